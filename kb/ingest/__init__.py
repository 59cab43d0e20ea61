"""Ingestion parsers: catalog files and content pages → ``kb.models`` types.

Usage::

    from kb.ingest import parse
    result = parse(Path("products.csv"), base_url="https://shop.example")
    result.products, result.passages, result.errors

Formats (see :func:`detect_format`): ``shopify_csv``, ``vendure_csv``,
``generic_csv``, ``dummyjson``, ``generic_json`` and ``pages`` (a directory or
a ``.md``/``.html``/``.txt`` file). A malformed row is reported as a
:class:`RowError` and never stops the rest of the file; a file that cannot be
parsed at all raises an :class:`IngestError` naming it. Every text field is
stripped and cleaned of invisible Unicode; prices are exact ``Decimal``.
"""

from .common import ParseResult
from .detect import FORMATS, detect_format, parse
from .errors import IngestError, RowError, UnknownFormatError, UnreadableFileError

__all__ = [
    "FORMATS",
    "IngestError",
    "ParseResult",
    "RowError",
    "UnknownFormatError",
    "UnreadableFileError",
    "detect_format",
    "parse",
]
