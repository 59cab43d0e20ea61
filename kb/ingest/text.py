"""Text hygiene shared by every parser: invisible-character removal, whitespace
normalisation, HTML to plain text, slugs and heading anchors.

Only the standard library is used (``html.parser`` for HTML).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

# Characters that render as nothing but can hide or reorder text: zero-width
# characters and joiners, bidi embeddings/overrides/isolates, the BOM, word
# joiners and invisible operators, soft hyphen, Hangul fillers, variation
# selectors, interlinear annotations, Unicode "tag" characters (used to smuggle
# hidden instructions) and every other format (Cf) character, plus C0/C1
# control characters other than tab and newline.
_INVISIBLE_RE = re.compile(
    "["
    "\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
    "\u00ad\u034f\u061c\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2"
    "\u115f\u1160\u17b4\u17b5\u180b-\u180f"
    "\u200b-\u200f\u202a-\u202e\u2060-\u206f"
    "\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3"
    "\U0001d173-\U0001d17a\U000e0000-\U000e007f\U000e0100-\U000e01ef"
    "]"
)
_LINE_SEPARATORS_RE = re.compile("\r\n|[\r\u2028\u2029\u0085]")
_SPACES_RE = re.compile(r"[^\S\n]+")
_ANY_SPACE_RE = re.compile(r"\s+")
_MANY_NEWLINES_RE = re.compile(r"\n{3,}")
_HTML_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>|<!--|&(?:[a-zA-Z]+|#\d+|#x[0-9a-fA-F]+);")


def strip_invisible(text: str) -> str:
    """Remove invisible and control characters (keeps tab and newline)."""
    return _INVISIBLE_RE.sub("", text)


def _as_str(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def clean_line(value: object) -> str:
    """A single-line text field: invisible characters removed, NFC, whitespace collapsed, stripped."""
    text = strip_invisible(_LINE_SEPARATORS_RE.sub("\n", _as_str(value)))
    text = unicodedata.normalize("NFC", text)
    return _ANY_SPACE_RE.sub(" ", text).strip()


def clean_block(value: object) -> str:
    """A multi-line text field: like :func:`clean_line` but keeps line and paragraph breaks."""
    text = strip_invisible(_LINE_SEPARATORS_RE.sub("\n", _as_str(value)))
    text = unicodedata.normalize("NFC", text)
    lines = [_SPACES_RE.sub(" ", line).strip() for line in text.split("\n")]
    return _MANY_NEWLINES_RE.sub("\n\n", "\n".join(lines)).strip()


def clean_value(value: Any) -> Any:
    """Clean every string inside a JSON-like value; Decimals become int/float.

    Used for free-form ``attributes`` so that no text field escapes cleaning
    and attributes stay JSON-serialisable.
    """
    if isinstance(value, str):
        return clean_block(value)
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {clean_line(k): clean_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_value(v) for v in value]
    return clean_block(str(value))


def looks_like_html(text: str) -> bool:
    """True when the text contains tags, comments or character references."""
    return bool(_HTML_TAG_RE.search(text))


def description_text(value: object) -> str:
    """A description field: HTML converted to plain text when it contains markup."""
    text = _as_str(value)
    return html_to_text(text) if looks_like_html(text) else clean_block(text)


def slugify(text: str, fallback: str = "page") -> str:
    """An ASCII, lower-case, hyphen-separated slug ("Envíos & Devoluciones" → "envios-devoluciones")."""
    ascii_text = unicodedata.normalize("NFKD", strip_invisible(text)).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug or fallback


def anchor_slug(text: str) -> str:
    """A GitHub-style heading anchor: lower-case, punctuation dropped, spaces → hyphens.

    Letters outside ASCII are kept ("Envíos rápidos" → "envíos-rápidos").
    """
    lowered = clean_line(text).lower()
    return re.sub(r"[^\w\- ]", "", lowered).replace(" ", "-")


class AnchorRegistry:
    """Makes heading anchors unique within a page (``faq``, ``faq-1``, ``faq-2``)."""

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def unique(self, anchor: str) -> str:
        """Return ``anchor`` or, when already used on the page, a numbered variant."""
        if anchor not in self._seen:
            self._seen[anchor] = 0
            return anchor
        while True:
            self._seen[anchor] += 1
            candidate = f"{anchor}-{self._seen[anchor]}"
            if candidate not in self._seen:
                self._seen[candidate] = 0
                return candidate


# --------------------------------------------------------------------------- HTML


@dataclass(frozen=True)
class HtmlHeading:
    """A heading (h1-h3) met in an HTML document; ``anchor`` is its id, if any."""

    level: int
    text: str
    anchor: str


@dataclass(frozen=True)
class HtmlText:
    """Plain text between two headings (already cleaned, paragraphs kept)."""

    text: str


HtmlBlock = HtmlHeading | HtmlText

_SKIP_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "math", "iframe", "object", "canvas", "head", "nav", "select"})
_PARAGRAPH_TAGS = frozenset(
    {
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "aside",
        "ul",
        "ol",
        "dl",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "blockquote",
        "figure",
        "figcaption",
        "address",
        "hr",
        "pre",
        "form",
        "fieldset",
        "details",
        "summary",
        "h4",
        "h5",
        "h6",
        "center",
    }
)
_LINE_TAGS = frozenset({"br", "li", "tr", "dt", "dd", "caption", "option"})
_SPLIT_HEADINGS = {"h1": 1, "h2": 2, "h3": 3}


class _HtmlCollector(HTMLParser):
    """Turns HTML into heading/text blocks; remembers <title>, <html lang> and canonical URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.lang = ""
        self.canonical = ""
        self._events: list[tuple[bool, HtmlBlock]] = []
        self._buffer: list[str] = []
        self._skip: list[str] = []
        self._pre = 0
        self._main = 0
        self._in_title = False
        self._title_parts: list[str] = []
        self._heading: tuple[int, str] | None = None
        self._heading_parts: list[str] = []
        self._cells_in_row = 0

    # -- helpers
    def _flush(self) -> None:
        text = clean_block("".join(self._buffer))
        self._buffer = []
        if text:
            self._events.append((self._main > 0, HtmlText(text)))

    def _emit(self, piece: str) -> None:
        if self._heading is not None:
            self._heading_parts.append(piece)
        else:
            self._buffer.append(piece)

    # -- HTMLParser interface
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k.lower(): (v or "") for k, v in attrs}
        if tag == "html" and attributes.get("lang"):
            self.lang = attributes["lang"]
        if tag == "link" and "canonical" in attributes.get("rel", "").lower().split():
            self.canonical = attributes.get("href", "")
        if tag == "title":
            self._in_title = True
            return
        if tag == "body" and "head" in self._skip:
            self._skip = [t for t in self._skip if t != "head"]
        if tag in _SKIP_TAGS:
            self._skip.append(tag)
            return
        if self._skip:
            return
        if self._heading is not None and (tag in _SPLIT_HEADINGS or tag in _PARAGRAPH_TAGS):
            self.handle_endtag(f"h{self._heading[0]}")  # sloppy HTML: a block inside a heading ends it
        if tag == "main":
            self._flush()
            self._main += 1
        if tag in _SPLIT_HEADINGS and self._heading is None:
            self._flush()
            self._heading = (_SPLIT_HEADINGS[tag], attributes.get("id", ""))
            self._heading_parts = []
            return
        if tag == "a" and self._heading is not None and not self._heading[1]:
            anchor = attributes.get("id") or attributes.get("name") or ""
            if anchor:
                self._heading = (self._heading[0], anchor)
        if tag == "pre":
            self._pre += 1
        if tag == "tr":
            self._cells_in_row = 0
        if tag in ("td", "th"):
            if self._cells_in_row:
                self._emit(" | ")
            self._cells_in_row += 1
        if tag in _PARAGRAPH_TAGS:
            self._emit("\n\n")
        elif tag in _LINE_TAGS:
            self._emit("\n")
        if tag == "li":
            self._emit("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            return
        if tag in _SKIP_TAGS and tag in self._skip:
            while self._skip:
                if self._skip.pop() == tag:
                    break
            return
        if self._skip:
            return
        if tag in _SPLIT_HEADINGS and self._heading is not None:
            level, anchor = self._heading
            text = clean_line("".join(self._heading_parts))
            self._heading = None
            self._heading_parts = []
            if text:
                self._events.append((self._main > 0, HtmlHeading(level, text, anchor)))
            return
        if tag == "main" and self._main:
            self._flush()
            self._main -= 1
        if tag == "pre" and self._pre:
            self._pre -= 1
        if tag in _PARAGRAPH_TAGS:
            self._emit("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
            return
        if self._skip:
            return
        self._emit(data if self._pre else _ANY_SPACE_RE.sub(" ", data))

    def close(self) -> None:
        super().close()
        if self._heading is not None:
            self.handle_endtag(f"h{self._heading[0]}")
        self._flush()
        self.title = clean_line("".join(self._title_parts))

    def blocks(self) -> list[HtmlBlock]:
        """The document's blocks; only those inside <main> when the page has one."""
        if any(in_main for in_main, _ in self._events):
            return [block for in_main, block in self._events if in_main]
        return [block for _, block in self._events]


@dataclass(frozen=True)
class HtmlDocument:
    """A parsed HTML document: metadata plus heading/text blocks in order."""

    title: str
    lang: str
    canonical: str
    blocks: list[HtmlBlock]


def parse_html(markup: str) -> HtmlDocument:
    """Parse an HTML page or fragment into blocks split at h1-h3."""
    collector = _HtmlCollector()
    collector.feed(markup)
    collector.close()
    return HtmlDocument(
        title=collector.title,
        lang=clean_line(collector.lang),
        canonical=clean_line(collector.canonical),
        blocks=collector.blocks(),
    )


def html_to_text(markup: str) -> str:
    """Plain text of an HTML fragment: tags dropped, entities decoded, paragraphs kept."""
    parts = [block.text for block in parse_html(markup).blocks]
    return clean_block("\n\n".join(parts))
