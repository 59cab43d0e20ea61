"""Building blocks shared by the format parsers: the parse result, file reading,
CSV rows with their physical line numbers, JSON items with the line where each
starts, exact price and stock parsing, and SKU de-duplication.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from kb.models import Passage, Product, Variant

from .errors import RowError, RowProblem, UnreadableFileError
from .text import clean_line


@dataclass
class ParseResult:
    """What one parse produced: products, content passages and rejected rows."""

    products: list[Product] = field(default_factory=list)
    passages: list[Passage] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


# --------------------------------------------------------------------------- files


def read_text(path: Path) -> str:
    """Read a text file as UTF-8 (BOM dropped), falling back to Windows-1252.

    Raises :class:`UnreadableFileError` naming the file when it cannot be
    read, is binary, or decodes as neither encoding.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    if b"\x00" in data:
        raise UnreadableFileError(f"{path}: binary file (contains NUL bytes), not CSV, JSON or text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"{path}: not UTF-8 or Windows-1252 text") from exc


# --------------------------------------------------------------------------- CSV


@dataclass(frozen=True)
class CsvRow:
    """One CSV record: the 1-based line where it starts and its cells by column name."""

    line: int
    cells: dict[str, str]

    def get(self, column: str) -> str:
        """The stripped cell of ``column`` ("" when the column is absent)."""
        return self.cells.get(column, "").strip()


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def csv_header(text: str) -> list[str]:
    """The header cells of a CSV text (stripped of padding and invisible characters)."""
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first_line))
    try:
        header = next(reader, [])
    except csv.Error:
        return []
    return [clean_line(h) for h in header]


def read_csv(path: Path, text: str, errors: list[RowError]) -> tuple[list[str], list[CsvRow]]:
    """Parse CSV text into its header and rows keyed by (cleaned) header name.

    Blank rows are skipped. A row with more non-empty cells than the header
    has columns is reported in ``errors`` and dropped; short rows are padded.
    Raises :class:`UnreadableFileError` when the text is not CSV at all.
    """
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff_delimiter(first_line))
    rows: list[CsvRow] = []
    header: list[str] = []
    line = 1
    try:
        for record in reader:
            start, line = line, reader.line_num + 1
            if not header:
                header = [clean_line(h) for h in record]
                if not any(header):
                    raise UnreadableFileError(f"{path}: empty CSV header")
                continue
            if not any(cell.strip() for cell in record):
                continue
            if len(record) > len(header) and any(cell.strip() for cell in record[len(header) :]):
                errors.append(RowError(str(path), start, f"row has {len(record)} cells but the header has {len(header)} columns"))
                continue
            cells = {name: (record[i] if i < len(record) else "") for i, name in enumerate(header) if name}
            rows.append(CsvRow(start, cells))
    except csv.Error as exc:
        raise UnreadableFileError(f"{path}: not valid CSV near line {reader.line_num}: {exc}") from exc
    if not header:
        raise UnreadableFileError(f"{path}: empty file, no CSV header")
    return header, rows


def require_columns(path: Path, header: Iterable[str], required: Iterable[str], fmt: str) -> None:
    """Raise :class:`UnreadableFileError` when the header lacks a required column."""
    present = set(header)
    missing = [c for c in required if c not in present]
    if missing:
        raise UnreadableFileError(f"{path}: not a {fmt} file, missing column(s): {', '.join(missing)}")


# --------------------------------------------------------------------------- JSON

_WS_RE = re.compile(r"[ \t\n\r]*")


def load_json(path: Path, text: str) -> Any:
    """Decode JSON with exact decimals; raise :class:`UnreadableFileError` naming the file."""
    try:
        return json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise UnreadableFileError(f"{path}: not valid JSON: {exc}") from exc


def _item_offsets(text: str, in_object: bool, key: str = "products") -> list[int]:
    """Character offsets where each element of the item array starts.

    The array is the whole document, or the value of the top-level
    ``key`` (``"products"``) when ``in_object``.
    """
    decoder = json.JSONDecoder(parse_float=Decimal)

    def skip(i: int) -> int:
        match = _WS_RE.match(text, i)
        return match.end() if match else i

    i = skip(0)
    if in_object:
        if text[i] != "{":
            raise ValueError("object expected")
        i = skip(i + 1)
        while text[i] != "}":
            name, i = decoder.raw_decode(text, i)
            i = skip(i)
            if text[i] != ":":
                raise ValueError("colon expected")
            i = skip(i + 1)
            if name == key:
                break
            _, i = decoder.raw_decode(text, i)
            i = skip(i)
            if text[i] == ",":
                i = skip(i + 1)
        else:
            raise ValueError(f"no {key} key")
    if text[i] != "[":
        raise ValueError("array expected")
    i = skip(i + 1)
    offsets: list[int] = []
    while text[i] != "]":
        offsets.append(i)
        _, i = decoder.raw_decode(text, i)
        i = skip(i)
        if text[i] == ",":
            i = skip(i + 1)
    return offsets


def json_products(path: Path, text: str) -> tuple[dict[str, Any], list[tuple[int, Any]]]:
    """The product items of a JSON catalog with their starting line numbers.

    Accepts a top-level list or an object with a ``"products"`` list; returns
    the object's other keys (e.g. ``currency``) and ``(line, item)`` pairs
    (line 0 if it cannot be located). Raises :class:`UnreadableFileError` for
    invalid JSON or a document without a product list.
    """
    return json_items(path, text, "products", "product")


def json_items(path: Path, text: str, key: str, noun: str) -> tuple[dict[str, Any], list[tuple[int, Any]]]:
    """The items of a JSON list (the document, or its top-level ``key``) with their starting lines.

    Returns the object's other keys and ``(line, item)`` pairs (line 0 if it
    cannot be located). Raises :class:`UnreadableFileError` naming the file for
    invalid JSON or a document without the list.
    """
    document = load_json(path, text)
    if isinstance(document, list):
        meta: dict[str, Any] = {}
        items = document
    elif isinstance(document, dict) and isinstance(document.get(key), list):
        meta = {k: v for k, v in document.items() if k != key}
        items = document[key]
    else:
        raise UnreadableFileError(f'{path}: JSON has no {noun} list (expected a list or {{"{key}": [...]}})')
    try:
        offsets = _item_offsets(text, isinstance(document, dict), key)
    except (ValueError, IndexError):
        offsets = []
    if len(offsets) != len(items):
        return meta, [(0, item) for item in items]
    lines: list[int] = []
    line, position = 1, 0
    for offset in offsets:  # counted as we go: a one-line document of 50k items stays linear
        line += text.count("\n", position, offset)
        position = offset
        lines.append(line)
    return meta, list(zip(lines, items, strict=True))


# --------------------------------------------------------------------------- values

_PLAIN_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?|\.\d+")
_THOUSANDS_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_DECIMAL_COMMA_RE = re.compile(r"\d+,\d{1,2}")


def parse_price(raw: object) -> Decimal:
    """An exact, non-negative price from a string or JSON number (never via float).

    Accepts ``19.99``, ``1,299.00`` (thousands separators) and ``12,50``
    (decimal comma). Raises :class:`RowProblem` for missing, non-numeric or
    negative prices.
    """
    if raw is None or isinstance(raw, bool):
        raise RowProblem("missing price" if raw is None else f"non-numeric price {raw!r}")
    if isinstance(raw, int):
        value = Decimal(raw)
    elif isinstance(raw, Decimal):
        value = raw
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    else:
        text = clean_line(raw)
        if not text:
            raise RowProblem("missing price")
        negative = text.startswith("-")
        digits = text[1:].strip() if negative else text
        if _PLAIN_NUMBER_RE.fullmatch(digits):
            value = Decimal(digits)
        elif _THOUSANDS_RE.fullmatch(digits):
            value = Decimal(digits.replace(",", ""))
        elif _DECIMAL_COMMA_RE.fullmatch(digits):
            value = Decimal(digits.replace(",", "."))
        else:
            raise RowProblem(f"non-numeric price {text!r}")
        if negative:
            value = -value
    if not value.is_finite():
        raise RowProblem(f"non-numeric price {raw!r}")
    if value < 0:
        raise RowProblem(f"negative price {value}")
    return value


def parse_stock(raw: object) -> int | None:
    """A non-negative stock count; ``None`` for an empty value (not tracked).

    Raises :class:`RowProblem` for non-integer or negative quantities.
    """
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise RowProblem(f"non-numeric stock {raw!r}")
    if isinstance(raw, int):
        value = raw
    else:
        text = clean_line(raw)
        if not text:
            return None
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise RowProblem(f"non-numeric stock {text!r}") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise RowProblem(f"stock is not a whole number: {text!r}")
        value = int(number)
    if value < 0:
        raise RowProblem(f"negative stock {value}")
    return value


def parse_currency(raw: object, default: str) -> str:
    """An upper-case ISO 4217 code; ``default`` when empty. Raises :class:`RowProblem` when malformed."""
    text = clean_line(raw).upper()
    if not text:
        return default
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise RowProblem(f"invalid currency {text!r}")
    return text


def split_tags(raw: object) -> tuple[str, ...]:
    """Tags from a list or a pipe- (preferred) or comma-separated string, de-duplicated, order kept."""
    if isinstance(raw, list | tuple):
        values = [clean_line(v) for v in raw]
    else:
        text = clean_line(raw)
        values = [clean_line(v) for v in text.split("|" if "|" in text else ",")]
    return tuple(dict.fromkeys(v for v in values if v))


def option_name(raw: object) -> str:
    """Canonical option name: cleaned, lower-case, British "colour" spelled "color"."""
    name = clean_line(raw).lower()
    return "color" if name == "colour" else name


def join_url(base_url: str, *parts: str) -> str:
    """``base_url`` (trailing slash dropped) followed by the path parts."""
    return base_url.rstrip("/") + "".join(parts)


class SkuRegistry:
    """Detects SKUs repeated within one file.

    ``owner`` (a product id) lets a format accept a SKU shared by variants of
    the same product (Vendure does not require unique SKUs) while still
    rejecting a SKU reused by another product.
    """

    def __init__(self) -> None:
        self._first: dict[str, tuple[int, str]] = {}

    def claim(self, sku: str, line: int, *, owner: str = "", shared_within_owner: bool = False) -> None:
        """Record ``sku``; raise :class:`RowProblem` if an earlier row already used it."""
        if sku in self._first:
            where, first_owner = self._first[sku]
            if shared_within_owner and owner and owner == first_owner:
                return
            raise RowProblem(f"duplicate SKU {sku!r} (first used on line {where})" if where else f"duplicate SKU {sku!r}")
        self._first[sku] = (line, owner)


def with_colors(attributes: dict[str, Any], variants: Iterable[Variant]) -> dict[str, Any]:
    """Add ``attributes["colors"]`` from the variants' color options when absent."""
    if "colors" not in attributes:
        colors = list(dict.fromkeys(v.options["color"] for v in variants if v.options.get("color")))
        if colors:
            attributes["colors"] = colors
    return attributes


def sort_errors(errors: list[RowError]) -> list[RowError]:
    """Errors ordered by file and line (stable for equal lines)."""
    return sorted(errors, key=lambda e: (e.file, e.line))
