"""Error types of the ingestion parsers.

Two kinds of failure are kept apart:

* a malformed row or item (missing title, bad price, duplicated SKU, ...) is
  reported as a :class:`RowError` in the parse result and the rest of the file
  is still imported;
* a file that cannot be used at all (unreadable, not CSV/JSON, unknown format)
  raises an :class:`IngestError` subclass whose message names the file.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RowError:
    """One rejected row or item.

    ``line`` is the 1-based physical line where the row (CSV: its first line)
    or item (JSON: the line where the object starts) begins, or 0 when it
    cannot be located.
    """

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class IngestError(ValueError):
    """A whole file could not be ingested; the message names the file.

    A ``ValueError`` so that callers handling bad input generically catch it.
    """


class UnreadableFileError(IngestError):
    """The file cannot be read or is not valid CSV/JSON/text."""


class UnknownFormatError(IngestError):
    """The file's format could not be recognised from its headers or keys."""


class RowProblem(Exception):
    """Raised inside a parser to reject the row being parsed (internal).

    Parsers catch it and turn it into a :class:`RowError`; it never escapes
    :func:`kb.ingest.parse`.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
