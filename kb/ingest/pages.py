"""Content pages (policies, FAQ, size guides) → passages.

Input is one ``.md``/``.markdown``, ``.html``/``.htm`` or ``.txt`` file, or a
directory searched recursively for them (hidden files and folders skipped).

* Markdown may start with front matter (``---`` … ``---``) giving ``title``,
  ``url``, ``lang`` and ``slug``; headings are ATX (``#``) or setext.
* HTML gives its ``<title>`` (else first ``<h1>``), ``<html lang>`` and
  ``<link rel="canonical">``; only ``<main>`` is read when the page has one;
  scripts, styles and ``<nav>`` are dropped.
* Plain text has no headings: the title comes from the file name.

Pages are split at level 1-3 headings. Each passage keeps its heading path
(the page's ``h1`` — or the title when there is none — then the ``h2`` and
``h3`` above it), its text without markup, its url (front-matter/canonical url,
else base_url + "/pages/" + slug) plus ``#anchor`` of the heading (the
heading's ``id`` in HTML, ``{#id}`` in Markdown, else a GitHub-style slug) and
its language: front matter or ``<html lang>``, else the nearest folder named
like a locale (``en``, ``es``, ``pt_BR``), else "en". Languages are given as
BCP 47 tags ("pt-BR"). Sections longer than :data:`MAX_PASSAGE_CHARS` are cut
at paragraph (then line, sentence, word) boundaries into several passages with
the same heading path. Passage ids are ``f"{slug}:{lang}:{n}"`` with n counting
from 0 in page order, so they are stable while the page is unchanged.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

from kb.models import Passage

from .common import ParseResult, join_url, read_text
from .errors import IngestError, RowError, UnreadableFileError
from .text import (
    AnchorRegistry,
    HtmlHeading,
    anchor_slug,
    clean_block,
    clean_line,
    parse_html,
    slugify,
)

MAX_PASSAGE_CHARS = 1200
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
TEXT_SUFFIXES = frozenset({".txt"})
PAGE_SUFFIXES = MARKDOWN_SUFFIXES | HTML_SUFFIXES | TEXT_SUFFIXES

# ISO 639-1 language codes: a folder is a locale folder only if named after one.
_ISO_639_1 = frozenset(
    "aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de dv "
    "dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id ie ig "
    "ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu lv mg mh "
    "mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru "
    "rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug "
    "uk ur uz ve vi vo wa wo xh yi yo za zh zu".split()
)
_LOCALE_RE = re.compile(r"([A-Za-z]{2})(?:[_-]([A-Za-z]{4}))?(?:[_-]([A-Za-z]{2}|\d{3}))?")


def normalize_lang(raw: str) -> str:
    """A BCP 47 tag from a locale name ("pt_BR" → "pt-BR", "EN" → "en"); "" if not a locale."""
    match = _LOCALE_RE.fullmatch(clean_line(raw))
    if not match or match.group(1).lower() not in _ISO_639_1:
        return ""
    language, script, region = match.groups()
    parts = [language.lower()]
    if script:
        parts.append(script.title())
    if region:
        parts.append(region.upper())
    return "-".join(parts)


@dataclass(frozen=True)
class _Section:
    level: int  # 0: text before any heading
    heading: str
    anchor: str
    text: str


@dataclass(frozen=True)
class _Page:
    title: str
    lang: str
    url: str
    slug: str
    sections: list[_Section]


# --------------------------------------------------------------------------- Markdown

_FRONT_MATTER_RE = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_ATX_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_CUSTOM_ID_RE = re.compile(r"\s*\{#([^}\s]+)\}\s*$")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_SETEXT_RE = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_RULE_RE = re.compile(r"^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_LINK_DEF_RE = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S+.*$")
_TABLE_SEP_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_LIST_RE = re.compile(r"^(\s*)[*+-][ \t]+")
_QUOTE_RE = re.compile(r"^\s{0,3}(?:>\s?)+")
_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")
_INLINE_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), r"\1"),
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), r"\1"),
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),
)
_CODE_SPAN_RE = re.compile(r"(`+)(.+?)\1")


def _front_matter(text: str) -> tuple[dict[str, str], str]:
    match = _FRONT_MATTER_RE.match(text)
    if not match:
        return {}, text
    meta: dict[str, str] = {}
    for line in match.group(1).split("\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip() and not key.startswith((" ", "\t", "-")):
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            meta[key.strip().lower()] = clean_line(value)
    return meta, text[match.end() :]


def _inline(text: str) -> str:
    """Markdown inline markup → plain text (links keep their text, images their alt text)."""
    escaped: list[str] = []

    def protect(match: re.Match[str]) -> str:
        escaped.append(match.group(1) if match.re is _ESCAPE_RE else match.group(2).strip())
        return f"\ue000{len(escaped) - 1}\ue001"

    text = _ESCAPE_RE.sub(protect, text)
    text = _CODE_SPAN_RE.sub(protect, text)
    for pattern, replacement in _INLINE_RULES:
        text = pattern.sub(replacement, text)
    text = html.unescape(_TAG_RE.sub("", text))
    return re.sub("\ue000(\\d+)\ue001", lambda m: escaped[int(m.group(1))], text)


def _table_row(line: str) -> str:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return " | ".join(_inline(c.strip()) for c in cells)


def _markdown_page(text: str) -> tuple[dict[str, str], list[_Section]]:
    meta, body = _front_matter(text.replace("\r\n", "\n").replace("\r", "\n"))
    body = _COMMENT_RE.sub("", body)
    sections: list[_Section] = []
    level, heading, anchor = 0, "", ""
    lines: list[str] = []
    fence = ""
    plain_lines = 0  # consecutive paragraph lines just read (setext headings need exactly one)

    def close() -> None:
        sections.append(_Section(level, heading, anchor, clean_block("\n".join(lines))))

    for raw in body.split("\n"):
        if fence:
            if raw.strip().startswith(fence):
                fence = ""
                lines.append("")
            else:
                lines.append(raw)
            continue
        fence_match = _FENCE_RE.match(raw)
        if fence_match:
            fence = fence_match.group(1)[0] * 3
            lines.append("")
            plain_lines = 0
            continue
        atx = _ATX_RE.match(raw)
        setext = _SETEXT_RE.match(raw) if plain_lines == 1 else None
        if atx or setext:
            if atx:
                new_level, title = len(atx.group(1)), atx.group(2) or ""
            elif setext:
                new_level, title = (1 if setext.group(1)[0] == "=" else 2), lines.pop()
            custom = _CUSTOM_ID_RE.search(title)
            new_anchor = custom.group(1) if custom else ""
            title = clean_line(_inline(_CUSTOM_ID_RE.sub("", title)))
            plain_lines = 0
            if new_level > 3:
                lines.extend(["", title, ""])
                continue
            close()
            level, heading, anchor, lines = new_level, title, new_anchor, []
            continue
        if not raw.strip():
            plain_lines = 0
            lines.append("")
            continue
        if _TABLE_SEP_RE.match(raw) and "|" in raw:
            plain_lines = 0
            continue
        if _RULE_RE.match(raw) or _LINK_DEF_RE.match(raw):
            plain_lines = 0
            lines.append("")
            continue
        line = _QUOTE_RE.sub("", raw)
        if "|" in line and line.strip().startswith("|"):
            lines.append(_table_row(line))
            plain_lines = 0
            continue
        line = _LIST_RE.sub(lambda m: m.group(1) + "- ", line)
        plain_lines = 0 if line.lstrip().startswith("- ") or re.match(r"\s*\d+[.)]\s", line) else plain_lines + 1
        lines.append(_inline(line))
    close()
    return meta, sections


# --------------------------------------------------------------------------- HTML / text


def _html_page(text: str) -> tuple[dict[str, str], list[_Section]]:
    document = parse_html(text)
    meta = {"title": document.title, "lang": document.lang, "url": document.canonical}
    sections: list[_Section] = []
    level, heading, anchor = 0, "", ""
    texts: list[str] = []
    for block in document.blocks:
        if isinstance(block, HtmlHeading):
            sections.append(_Section(level, heading, anchor, clean_block("\n\n".join(texts))))
            level, heading, anchor, texts = block.level, block.text, block.anchor, []
        else:
            texts.append(block.text)
    sections.append(_Section(level, heading, anchor, clean_block("\n\n".join(texts))))
    return meta, sections


def _text_page(text: str) -> tuple[dict[str, str], list[_Section]]:
    return {}, [_Section(0, "", "", clean_block(text))]


# --------------------------------------------------------------------------- passages


def _split_long(text: str, limit: int = MAX_PASSAGE_CHARS) -> list[str]:
    """Cut text into pieces of at most ``limit`` characters at the largest boundary that works."""
    if len(text) <= limit:
        return [text]
    for separator in ("\n\n", "\n", ". ", " "):
        parts = text.split(separator)
        if len(parts) == 1:
            continue
        pieces = [p + (separator.rstrip() if separator == ". " and i < len(parts) - 1 else "") for i, p in enumerate(parts)]
        chunks: list[str] = []
        current = ""
        glue = "\n\n" if separator == "\n\n" else ("\n" if separator == "\n" else " ")
        for piece in pieces:
            piece = piece.strip()
            if not piece:
                continue
            candidate = f"{current}{glue}{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
                continue
            if current:
                chunks.append(current)
            if len(piece) > limit:
                chunks.extend(_split_long(piece, limit))
                current = ""
            else:
                current = piece
        if current:
            chunks.append(current)
        return chunks
    return [text[i : i + limit] for i in range(0, len(text), limit)]


def _humanize(stem: str) -> str:
    words = re.sub(r"[-_]+", " ", stem).strip()
    return words[:1].upper() + words[1:] if words else "Page"


def _passages(page: _Page, source: str) -> list[Passage]:
    passages: list[Passage] = []
    anchors = AnchorRegistry()
    path: list[tuple[int, str]] = [(1, page.title)]
    for section in page.sections:
        anchor = ""
        if section.level:
            anchor = anchors.unique(section.anchor or anchor_slug(section.heading))
            if section.level == 1:
                path = [(1, section.heading)]
            else:
                path = [entry for entry in path if entry[0] < section.level] + [(section.level, section.heading)]
        if not section.text:
            continue
        url = f"{page.url}#{anchor}" if anchor else page.url
        for chunk in _split_long(section.text):
            passages.append(
                Passage(
                    id=f"{page.slug}:{page.lang}:{len(passages)}",
                    page_title=page.title,
                    heading_path=tuple(text for _, text in path),
                    text=chunk,
                    url=url,
                    lang=page.lang,
                    source=source,
                )
            )
    return passages


def _folder_lang(file: Path, root: Path) -> str:
    folders = file.parent.relative_to(root).parts if root != file else ()
    candidates = [root.name, *folders] if root != file else [file.parent.name]
    for name in reversed(candidates):
        lang = normalize_lang(name)
        if lang:
            return lang
    return ""


def _slug(file: Path, root: Path) -> str:
    if root == file:
        return slugify(file.stem)
    parts = [p for p in file.relative_to(root).with_suffix("").parts]
    kept = [slugify(p) for i, p in enumerate(parts) if i == len(parts) - 1 or not normalize_lang(p)]
    return "/".join(kept)


def parse_page(file: Path, root: Path, *, base_url: str = "") -> list[Passage]:
    """Passages of one page file; ``root`` is the directory given to :func:`parse` (or the file)."""
    text = read_text(file)
    suffix = file.suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        meta, sections = _markdown_page(text)
    elif suffix in HTML_SUFFIXES:
        meta, sections = _html_page(text)
    elif suffix in TEXT_SUFFIXES:
        meta, sections = _text_page(text)
    else:
        raise UnreadableFileError(f"{file}: not a page file (expected .md, .html, .htm or .txt)")
    first_h1 = next((s.heading for s in sections if s.level == 1 and s.heading), "")
    title = clean_line(meta.get("title")) or first_h1 or _humanize(file.stem)
    lang = normalize_lang(meta.get("lang") or meta.get("language") or meta.get("locale") or "")
    slug = slugify(meta["slug"]) if meta.get("slug") else _slug(file, root)
    url = clean_line(meta.get("url")) or join_url(base_url, "/pages/", slug)
    if url.startswith("/") and base_url and not url.startswith(base_url):
        url = join_url(base_url, url)
    page = _Page(
        title=title,
        lang=lang or _folder_lang(file, root) or "en",
        url=url,
        slug=slug,
        sections=sections,
    )
    return _passages(page, str(file))


def page_files(root: Path) -> list[Path]:
    """The page files under ``root`` (sorted, hidden entries skipped), or ``[root]`` for a file."""
    if root.is_file():
        return [root]
    files = []
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root).parts
        if any(part.startswith(".") for part in relative):
            continue
        if file.is_file() and file.suffix.lower() in PAGE_SUFFIXES:
            files.append(file)
    return files


def parse(path: Path, *, currency: str = "USD", base_url: str = "") -> ParseResult:
    """Parse a page file or a directory of pages into passages.

    For a single file, an unreadable file raises :class:`UnreadableFileError`;
    in a directory, it is reported as a :class:`RowError` (line 0) and the
    other pages are still read. Two pages of a directory that would get the
    same ids (same slug and language) are reported the same way and the
    second one is skipped. ``currency`` is accepted for a uniform
    signature and unused.
    """
    if not path.exists():
        raise UnreadableFileError(f"{path}: no such file or directory")
    result = ParseResult()
    if path.is_file():
        result.passages = parse_page(path, path, base_url=base_url)
        return result
    owners: dict[str, Path] = {}
    for file in page_files(path):
        try:
            passages = parse_page(file, path, base_url=base_url)
        except IngestError as exc:
            result.errors.append(RowError(str(file), 0, str(exc)))
            continue
        if not passages:
            continue
        prefix = passages[0].id.rsplit(":", 1)[0]
        if prefix in owners:
            reason = f"page id {prefix!r} is already used by {owners[prefix]}; set a different slug in front matter"
            result.errors.append(RowError(str(file), 0, reason))
            continue
        owners[prefix] = file
        result.passages.extend(passages)
    return result
