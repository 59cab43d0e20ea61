"""Format detection and the :func:`parse` entry point.

Detection looks at content, not only at the extension: CSV headers tell
Shopify, Vendure and generic CSV apart, JSON keys tell DummyJSON from the
generic JSON catalog, and directories or ``.md``/``.html``/``.txt`` files are
content pages.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import dummyjson, generic, pages, shopify_csv, vendure_csv
from .common import ParseResult, csv_header, load_json, read_text
from .errors import UnknownFormatError, UnreadableFileError

FORMATS = ("shopify_csv", "vendure_csv", "generic_csv", "dummyjson", "generic_json", "pages")

_Parser = Callable[..., ParseResult]
_PARSERS: dict[str, _Parser] = {
    "shopify_csv": shopify_csv.parse,
    "vendure_csv": vendure_csv.parse,
    "generic_csv": generic.parse_csv,
    "dummyjson": dummyjson.parse,
    "generic_json": generic.parse_json,
    "pages": pages.parse,
}


def _json_format(path: Path, document: Any) -> str:
    items: Any = document.get("products") if isinstance(document, dict) else document
    if isinstance(items, list):
        sample = [item for item in items[:5] if isinstance(item, dict)]
        if sample and sum(dummyjson.looks_like(item) for item in sample) * 2 > len(sample):
            return "dummyjson"
    if generic.looks_like_json(document):
        return "generic_json"
    if isinstance(document, dict):
        keys = ", ".join(sorted(map(str, document))[:10])
        raise UnknownFormatError(f"{path}: JSON object with keys [{keys}] is not a known catalog format")
    raise UnknownFormatError(f"{path}: JSON is not a known catalog format (expected a list of products)")


def _csv_format(path: Path, header: list[str]) -> str:
    if shopify_csv.looks_like(header):
        return "shopify_csv"
    if vendure_csv.looks_like(header):
        return "vendure_csv"
    if generic.looks_like_csv(header):
        return "generic_csv"
    shown = ", ".join(h for h in header[:12] if h)
    raise UnknownFormatError(f"{path}: unrecognised catalog header [{shown}]")


def detect_format(path: Path) -> str:
    """Name the format of ``path``: one of :data:`FORMATS`.

    Raises :class:`UnknownFormatError` (naming the file) when no format fits,
    and :class:`UnreadableFileError` when the file cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        return "pages"
    if not path.exists():
        raise UnreadableFileError(f"{path}: no such file or directory")
    if path.suffix.lower() in pages.PAGE_SUFFIXES:
        return "pages"
    text = read_text(path)
    stripped = text.lstrip()
    if not stripped:
        raise UnknownFormatError(f"{path}: empty file")
    if stripped[0] in "[{":
        try:
            document = load_json(path, text)
        except UnreadableFileError as exc:
            raise UnknownFormatError(str(exc)) from exc
        return _json_format(path, document)
    if path.suffix.lower() == ".json":
        raise UnknownFormatError(f"{path}: .json file does not contain a JSON object or list")
    return _csv_format(path, csv_header(text))


def parse(path: Path, fmt: str | None = None, *, currency: str = "USD", base_url: str = "") -> ParseResult:
    """Parse a catalog file or page(s) into products, passages and row errors.

    ``fmt`` forces a format (see :data:`FORMATS`); by default it is detected.
    ``currency`` applies when the file does not state one; ``base_url`` is
    the shop's address used to build product and page URLs. Malformed rows
    are returned in ``errors``; a file that cannot be parsed at all raises an
    :class:`~kb.ingest.errors.IngestError` naming it.
    """
    path = Path(path)
    chosen = fmt or detect_format(path)
    parser = _PARSERS.get(chosen)
    if parser is None:
        raise ValueError(f"unknown format {chosen!r}; expected one of {', '.join(FORMATS)}")
    code = currency.strip().upper() or "USD"
    return parser(path, currency=code, base_url=base_url.strip().rstrip("/"))
