"""Maintenance of the gettext catalogs: ``shopkeeper locales extract|update|compile|check``.

Shopper-facing strings are marked in the code with ``_("...", **params)`` and
``ngettext(singular, plural, n, **params)`` (see :mod:`bot.i18n`). The workflow:

* :func:`extract` scans the sources and writes the template ``locales/shopkeeper.pot``;
* :func:`update` merges the template into every ``locales/<lang>/LC_MESSAGES/shopkeeper.po``,
  keeping existing translations and adding new entries untranslated;
* :func:`compile` writes ``.mo`` files next to the ``.po`` files for deployments
  that want them on disk (the app itself compiles the ``.po`` files in memory);
* :func:`check` lists everything that would make a shopper see English or a broken
  reply: missing, empty or fuzzy translations, placeholders that differ from the
  msgid, obsolete entries.

Placeholders are :meth:`str.format` fields (``{store}``, ``{count}``); ngettext
strings also get ``{n}``.
"""

from __future__ import annotations

import copy
import io
import logging
import string
from collections.abc import Iterable, Sequence
from pathlib import Path

from babel import Locale
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from bot.i18n import SUPPORTED_LOCALES
from locales import DOMAIN, LOCALES_DIR

__all__ = [
    "KEYWORDS",
    "LOCALES_DIR",
    "POT_PATH",
    "PROJECT_ROOT",
    "SOURCE_DIRS",
    "check",
    "compile",
    "extract",
    "mo_path",
    "placeholders",
    "po_path",
    "update",
]

log = logging.getLogger(__name__)

PROJECT_ROOT = LOCALES_DIR.parent
POT_PATH = LOCALES_DIR / f"{DOMAIN}.pot"
SOURCE_DIRS: tuple[str, ...] = ("bot", "channels", "jobs", "kb")
# ``_(message, **params)`` and ``ngettext(singular, plural, n, **params)``
KEYWORDS: dict[str, tuple[int, ...] | None] = {"_": None, "ngettext": (1, 2)}
METHOD_MAP: list[tuple[str, str]] = [("**.py", "python")]
COMMENT_TAGS: tuple[str, ...] = ("TRANSLATORS:",)
BRACE_FORMAT_FLAG = "python-brace-format"

SOURCE_LOCALE = "en"  # the language of the msgids
PROJECT = "shopkeeper"
VERSION = "0.1.0"
COPYRIGHT_HOLDER = "the shopkeeper contributors"
LAST_TRANSLATOR = "shopkeeper contributors"

_FORMATTER = string.Formatter()


def po_path(locale: str) -> Path:
    """Where the catalog of ``locale`` lives."""
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(locale: str) -> Path:
    """Where :func:`compile` writes the binary catalog of ``locale`` (git-ignored)."""
    return po_path(locale).with_suffix(".mo")


def placeholders(text: str) -> set[str]:
    """The :meth:`str.format` field names in ``text`` (``{{`` escapes excluded).

    Raises :class:`ValueError` on a malformed format string (unbalanced braces).
    """
    fields: set[str] = set()
    for _literal, name, _spec, _conversion in _FORMATTER.parse(text):
        if name is not None:
            fields.add(name)
    return fields


def _safe_placeholders(text: str) -> set[str] | None:
    try:
        return placeholders(text)
    except ValueError:
        return None


def _new_catalog(locale: str | None = None) -> Catalog:
    language = (Locale.parse(locale).english_name or locale) if locale else None
    return Catalog(
        locale=locale,
        domain=DOMAIN,
        header_comment=(
            f"# {f'{language} translations' if language else 'Translations template'} for {PROJECT}.\n"
            f"# Copyright (C) {COPYRIGHT_HOLDER}\n"
            f"# This file is distributed under the same license as the {PROJECT} project.\n#"
        ),
        project=PROJECT,
        version=VERSION,
        copyright_holder=COPYRIGHT_HOLDER,
        last_translator=LAST_TRANSLATOR if locale else None,
        language_team=language,
        charset="utf-8",
        fuzzy=False,
    )


def _render(catalog: Catalog, *, ignore_obsolete: bool = False) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, ignore_obsolete=ignore_obsolete, include_previous=True)
    return buffer.getvalue()


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale, domain=DOMAIN)


def extract(source_dirs: Sequence[str] = SOURCE_DIRS, *, output: Path | None = POT_PATH) -> Catalog:
    """Extract the marked strings of ``source_dirs`` (relative to the project root).

    Returns the template catalog and writes it to ``output`` (``locales/shopkeeper.pot``)
    unless ``output`` is None. The file is left untouched when only its creation
    date would change, so repeated extractions do not produce diffs.
    """
    template = _new_catalog()
    for source_dir in source_dirs:
        directory = PROJECT_ROOT / source_dir
        if not directory.is_dir():
            log.warning("locales: no source directory %s", directory)
            continue
        results = extract_from_dir(
            directory,
            method_map=METHOD_MAP,
            keywords=KEYWORDS,
            comment_tags=COMMENT_TAGS,
            strip_comment_tags=True,
        )
        for filename, lineno, message, comments, context in results:
            location = (Path(source_dir, filename).as_posix(), lineno)
            texts = message if isinstance(message, tuple) else (message,)
            flags = {BRACE_FORMAT_FLAG} if any(_safe_placeholders(t or "") for t in texts) else set()
            if isinstance(message, tuple):
                # plural: also the ``{n}`` that ngettext always passes
                flags.add(BRACE_FORMAT_FLAG)
            template.add(message, None, [location], auto_comments=comments, flags=flags, context=context)
    if output is not None:
        _write_template(template, output)
    return template


def _write_template(template: Catalog, output: Path) -> None:
    if output.exists():
        previous = _read(output)
        template.creation_date = previous.creation_date
        if _render(template) == output.read_bytes():
            return
        template.creation_date = _new_catalog().creation_date
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(_render(template))
    log.info("locales: wrote %s (%d messages)", output, len(template))


def _display(path: Path) -> str:
    try:
        return path.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return str(path)


def _ids(message: Message) -> tuple[str, ...]:
    """``(msgid,)`` or ``(singular, plural)``."""
    return tuple(message.id) if isinstance(message.id, (tuple, list)) else (message.id,)


def _describe(message: Message) -> str:
    msgid = _ids(message)[0]
    short = msgid if len(msgid) <= 60 else msgid[:57] + "..."
    where = ", ".join(f"{path}:{line}" for path, line in message.locations[:2])
    return f"{short!r}" + (f" ({where})" if where else "")


def _fuzzy_entries(catalog: Catalog) -> Iterable[Message]:
    return (m for m in catalog if m.id and m.fuzzy)


def update(
    template: Catalog | None = None,
    locales: Sequence[str] = SUPPORTED_LOCALES,
    *,
    fuzzy_matching: bool = True,
    drop_obsolete: bool = False,
) -> list[str]:
    """Merge the template into each locale's ``.po`` file and return a report.

    ``template`` defaults to ``locales/shopkeeper.pot`` (or a fresh extraction when
    that file does not exist). Existing translations are kept, new msgids are added
    with an empty translation, a missing ``.po`` is created. When ``fuzzy_matching``
    is on, a changed msgid may be pre-filled with the old translation and marked
    fuzzy; fuzzy entries are never used at runtime, and every one of them is
    listed in the returned report so nobody ships them by accident. Entries no
    longer in the source are kept as obsolete (``#~``) comments, and reported,
    unless ``drop_obsolete``.

    The source-language catalog (``en``) is filled automatically: its new or
    changed entries get msgstr = msgid, since the code's English is the reference.
    """
    if template is None:
        template = _read(POT_PATH) if POT_PATH.exists() else extract(output=None)
    report: list[str] = []
    for locale in locales:
        path = po_path(locale)
        if path.exists():
            catalog = _read(path, locale)
            created = False
        else:
            catalog = _new_catalog(locale)
            created = True
        # Catalog.update inserts the template's own Message objects: give each locale a copy
        catalog.update(copy.deepcopy(template), no_fuzzy_matching=not fuzzy_matching)
        if locale == SOURCE_LOCALE:
            filled = _fill_from_msgids(catalog)
            if filled:
                report.append(f"{locale}: copied {filled} msgid(s) into their msgstr (source language)")
        if drop_obsolete:
            catalog.obsolete.clear()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_render(catalog))
        untranslated = sum(1 for m in catalog if m.id and not _is_translated(m))
        report.append(
            f"{locale}: {'created' if created else 'updated'} {_display(path)} ({len(template)} messages, {untranslated} to translate)"
        )
        for message in _fuzzy_entries(catalog):
            report.append(f"{locale}: FUZZY, review the pre-filled translation of {_describe(message)}")
        for message in catalog.obsolete.values():
            report.append(f"{locale}: obsolete entry kept as a comment: {_describe(message)}")
    return report


def _fill_from_msgids(catalog: Catalog) -> int:
    """Set msgstr = msgid on the untranslated or fuzzy entries of the source-language catalog."""
    filled = 0
    for message in catalog:
        if not message.id or (_is_translated(message) and not message.fuzzy):
            continue
        ids = _ids(message)
        message.string = ids if len(ids) > 1 else ids[0]
        message.flags.discard("fuzzy")
        message.previous_id = []
        filled += 1
    return filled


def compile(check_only: bool = False, locales: Sequence[str] = SUPPORTED_LOCALES) -> list[str]:
    """Compile each ``.po`` into a ``.mo`` next to it; return the problems found.

    Fuzzy entries are left out of the ``.mo`` (as at runtime). With ``check_only``
    the catalogs are only validated (Babel's catalog checks: plural form counts,
    format strings) and nothing is written.
    """
    problems: list[str] = []
    for locale in locales:
        path = po_path(locale)
        if not path.exists():
            problems.append(f"{locale}: no catalog at {_display(path)}")
            continue
        catalog = _read(path, locale)
        for message, errors in catalog.check():
            for error in errors:
                problems.append(f"{locale}: {_describe(message)}: {error}")
        if check_only:
            continue
        target = mo_path(locale)
        with target.open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=False)
        log.info("locales: compiled %s", target)
    return problems


def _forms(message: Message) -> tuple[str, ...]:
    if isinstance(message.string, (list, tuple)):
        return tuple(message.string)
    return (message.string or "",)


def _is_translated(message: Message) -> bool:
    return all(form.strip() for form in _forms(message))


def _placeholder_problems(locale: str, message: Message, num_plurals: int) -> list[str]:
    problems: list[str] = []
    ids = _ids(message)
    forms = _forms(message)
    if len(ids) > 1:
        singular, plural = ids[0], ids[1]
        if len(forms) != num_plurals:
            problems.append(f"{locale}: {_describe(message)} has {len(forms)} plural forms, the catalog needs {num_plurals}")
        # form 0 is the singular unless the language has a single form
        expected_texts = [singular if i == 0 and num_plurals > 1 else plural for i in range(len(forms))]
    else:
        expected_texts = [ids[0]] * len(forms)
    for index, (form, source) in enumerate(zip(forms, expected_texts, strict=True)):
        if not form.strip():
            continue  # reported as untranslated
        expected = _safe_placeholders(source)
        found = _safe_placeholders(form)
        label = f"plural form {index}" if len(ids) > 1 else "translation"
        if found is None:
            problems.append(f"{locale}: {_describe(message)}: {label} has unbalanced braces: {form!r}")
        elif expected is not None and found != expected:
            missing = ", ".join(f"{{{p}}}" for p in sorted(expected - found))
            extra = ", ".join(f"{{{p}}}" for p in sorted(found - expected))
            detail = "; ".join(part for part in (f"missing {missing}" if missing else "", f"unknown {extra}" if extra else "") if part)
            problems.append(f"{locale}: {_describe(message)}: {label} placeholders differ ({detail})")
    return problems


def check(
    locales: Sequence[str] = SUPPORTED_LOCALES,
    source_dirs: Sequence[str] = SOURCE_DIRS,
) -> list[str]:
    """Everything wrong with the catalogs, as readable lines (an empty list means OK).

    Compares a fresh extraction of the sources (nothing is written) with each
    locale's ``.po``: a msgid missing from a catalog, an empty translation (any
    plural form), a fuzzy entry, placeholders different between msgid and msgstr,
    an entry no longer in the source (obsolete), plus Babel's own catalog checks.
    """
    template = extract(source_dirs, output=None)
    problems: list[str] = []
    for locale in locales:
        path = po_path(locale)
        if not path.exists():
            problems.append(f"{locale}: no catalog at {_display(path)} (run `shopkeeper locales update`)")
            continue
        try:
            catalog = _read(path, locale)
        except Exception as exc:  # a syntax error in the .po
            problems.append(f"{locale}: cannot read {_display(path)}: {exc}")
            continue
        if catalog.locale_identifier != locale:
            problems.append(f"{locale}: the Language header says {catalog.locale_identifier!r}")
        for source in template:
            if not source.id:
                continue
            entry = catalog.get(source.id, source.context)
            if entry is None:
                problems.append(f"{locale}: missing msgid {_describe(source)} (run `shopkeeper locales update`)")
            elif _ids(source) != _ids(entry):
                problems.append(f"{locale}: {_describe(source)} changed between singular/plural or plural text")
        for message in catalog:
            if not message.id:
                continue  # the header
            if template.get(message.id, message.context) is None:
                problems.append(f"{locale}: {_describe(message)} is no longer in the source (run `shopkeeper locales update`)")
            if message.fuzzy:
                problems.append(f"{locale}: fuzzy entry {_describe(message)} (review it and remove the fuzzy flag)")
            if not _is_translated(message):
                problems.append(f"{locale}: empty translation for {_describe(message)}")
            problems.extend(_placeholder_problems(locale, message, catalog.num_plurals))
        for message in catalog.obsolete.values():
            problems.append(f"{locale}: obsolete entry {_describe(message)} (delete its #~ lines)")
        for message, errors in catalog.check():
            for error in errors:
                problems.append(f"{locale}: {_describe(message)}: {error}")
    return problems
