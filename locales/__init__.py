"""gettext catalogs of shopkeeper (``<lang>/LC_MESSAGES/shopkeeper.po``).

The ``.po`` files are the source; :mod:`bot.i18n` compiles them when the process
starts, so no generated ``.mo`` file is committed.
"""

from pathlib import Path

LOCALES_DIR = Path(__file__).resolve().parent
DOMAIN = "shopkeeper"
