"""Product-search quality on a judged query set (``shopkeeper eval retrieval``).

:func:`evaluate_retrieval` indexes a catalog into a temporary embedded index and
runs every query of a dataset through the path the bot takes for a shopper's
message:

1. :func:`kb.query.clean_query` keeps the product words (and notices "in stock");
2. the constraints become hard filters, from one of three sources
   (``constraints_mode``): ``system`` — the bot's own offline extractor
   :func:`bot.constraints.extract_constraints` and the brand a product-line name
   implies (:mod:`kb.product_lines`, learned from the catalog), then
   :func:`bot.personalization.filters_for`; ``labeled`` — the dataset's labeled
   ``max_price`` / ``min_price`` / ``in_stock_only`` / ``brand``; ``none`` (no
   constraint; like the others it passes the query's language, as the bot always does);
3. ``index.search(query, filters, k=20, kinds=("product",))``.

The dataset is JSON lines ``{"qid", "query", "language", "constraints",
"judgments": {product id: 2|1}}``; unlisted products are irrelevant, and an empty
``judgments`` means the store sells nothing that fits: the right answer is an empty
result. The labeled ``category_hint`` is not a filter field of any catalog and is
ignored.

Metrics, over queries with judgments: nDCG@10 with linear graded gains (2 exact,
1 partial; the ideal ranking is the judged products sorted by grade), Recall@20
(share of products of grade ≥ 1 among the first 20) and MRR (reciprocal rank of the
first product of grade ≥ 1, 0 when none is returned). Over queries without
judgments: the share that came back empty. Each metric comes with its ceiling: the
best value any ranking could reach under the same filters (the judgments grade some
over-budget products 1, which a hard budget filter can never return).
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from kb.embedder import Embedder, make_embedder
from kb.ingest import parse
from kb.models import SearchFilters
from kb.product_lines import ProductLines
from kb.query import clean_query
from kb.sqlite_index import RankingConfig, SearchMode, SQLiteIndex

ConstraintsMode = Literal["system", "labeled", "none"]
RANKING_DEPTH = 20
NDCG_DEPTH = 10

__all__ = [
    "ConstraintsMode",
    "EvalQuery",
    "QueryRun",
    "build_index",
    "evaluate_retrieval",
    "evaluate_retrieval_async",
    "format_table",
    "labeled_filters",
    "load_dataset",
    "mean_metrics",
    "ndcg_at",
    "recall_at",
    "reciprocal_rank",
    "run_queries",
    "system_filters",
]


# --------------------------------------------------------------------------- metrics


def ndcg_at(ranking: Sequence[str], judgments: Mapping[str, int], k: int = NDCG_DEPTH) -> float:
    """Normalised discounted cumulative gain of ``ranking`` at depth ``k`` (linear gains).

    DCG = Σ grade(rank i) / log2(i + 1) over the first ``k`` ranks; it is divided by
    the DCG of the ideal ordering of the judged products. 0.0 when nothing is judged
    relevant.
    """
    ideal = sorted((g for g in judgments.values() if g > 0), reverse=True)[:k]
    ideal_dcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    if ideal_dcg == 0:
        return 0.0
    dcg = sum(judgments.get(pid, 0) / math.log2(i + 2) for i, pid in enumerate(ranking[:k]))
    return dcg / ideal_dcg


def recall_at(ranking: Sequence[str], judgments: Mapping[str, int], k: int = RANKING_DEPTH) -> float:
    """Share of the products judged relevant (grade ≥ 1) found in the first ``k``; 0.0 when none is judged."""
    relevant = {pid for pid, g in judgments.items() if g >= 1}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranking[:k])) / len(relevant)


def reciprocal_rank(ranking: Sequence[str], judgments: Mapping[str, int]) -> float:
    """1 / rank of the first product of grade ≥ 1; 0.0 when the ranking holds none."""
    for i, pid in enumerate(ranking):
        if judgments.get(pid, 0) >= 1:
            return 1.0 / (i + 1)
    return 0.0


# --------------------------------------------------------------------------- dataset


@dataclass(frozen=True, slots=True)
class EvalQuery:
    """One judged query of the dataset."""

    qid: str
    query: str
    language: str
    constraints: Mapping[str, Any] = field(default_factory=dict)
    judgments: Mapping[str, int] = field(default_factory=dict)


def load_dataset(path: Path) -> list[EvalQuery]:
    """The queries of a JSON-lines dataset (blank lines skipped). Raises ValueError naming a bad line."""
    queries: list[EvalQuery] = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            queries.append(
                EvalQuery(
                    qid=str(raw["qid"]),
                    query=str(raw["query"]),
                    language=str(raw.get("language") or "en"),
                    constraints=dict(raw.get("constraints") or {}),
                    judgments={str(k): int(v) for k, v in (raw.get("judgments") or {}).items()},
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a retrieval judgment line ({exc})") from exc
    return queries


# --------------------------------------------------------------------------- the bot's path


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    return Decimal(str(value))


def labeled_filters(query: EvalQuery) -> SearchFilters:
    """Filters from the dataset's labels: price bounds, availability and brand (never ``category_hint``)."""
    labels = query.constraints
    brand = labels.get("brand")
    return SearchFilters(
        max_price=_decimal(labels.get("max_price")),
        min_price=_decimal(labels.get("min_price")),
        in_stock_only=bool(labels.get("in_stock_only")),
        brands=(str(brand),) if brand else (),
        lang=query.language,
    )


def system_filters(
    query: EvalQuery, *, brands: Iterable[str], in_stock_only: bool, lines: ProductLines | None = None
) -> SearchFilters:
    """Filters the bot derives itself: its offline constraint extractor and the brand a product line implies
    (:mod:`kb.product_lines`), then :func:`filters_for`."""
    from bot.constraints import extract_constraints
    from bot.personalization import filters_for

    constraints = extract_constraints(query.query, language=query.language, brands=tuple(brands))
    implied = (lines or ProductLines()).implied_brand(
        query.query, query.language, declared=constraints.brands_include, excluded=constraints.brands_exclude
    )
    return filters_for(constraints, lang=query.language, in_stock_only=in_stock_only, implied=implied)


@dataclass(frozen=True, slots=True)
class QueryRun:
    """One query's result: its ranking (product ids, best first) and the products its filters allow (None: all)."""

    qid: str
    ranking: list[str]
    allowed: frozenset[str] | None = None


async def run_queries(
    index: SQLiteIndex, queries: Sequence[EvalQuery], *, constraints_mode: ConstraintsMode = "system", k: int = RANKING_DEPTH
) -> dict[str, QueryRun]:
    """Each query through the bot's search path (cleaning, filters, ``index.search``), by qid."""
    brands = await index.brands()
    lines = await asyncio.to_thread(ProductLines.from_catalog, await index.product_names())
    runs: dict[str, QueryRun] = {}
    for query in queries:
        cleaned = clean_query(query.query, query.language)
        if constraints_mode == "system":
            filters = system_filters(query, brands=brands, in_stock_only=cleaned.in_stock_only, lines=lines)
        elif constraints_mode == "labeled":
            filters = labeled_filters(query)
        else:
            filters = SearchFilters(lang=query.language)  # no constraint; the shopper's language is always known
        hits = await index.search(cleaned.text, filters, k=k, kinds=("product",))
        allowed = await index.matching_products(filters)
        runs[query.qid] = QueryRun(query.qid, [hit.id for hit in hits], None if allowed is None else frozenset(allowed))
    return runs


def mean_metrics(queries: Sequence[EvalQuery], runs: Mapping[str, QueryRun | Sequence[str]]) -> dict[str, float | int]:
    """nDCG@10, Recall@20, MRR over judged queries and the empty share over no-match queries.

    ``runs`` maps qids to :class:`QueryRun` values or plain rankings. With runs that
    know their allowed products, ``ndcg@10_ceiling`` / ``recall@20_ceiling`` give the
    best score any ranking could reach under the same filters (a hard budget filter
    cannot return an over-budget product the judgments grade 1).
    """
    judged = [q for q in queries if q.judgments]
    unmatched = [q for q in queries if not q.judgments]

    def ranking(qid: str) -> list[str]:
        run = runs.get(qid)
        if run is None:
            return []
        return list(run.ranking) if isinstance(run, QueryRun) else list(run)

    def oracle(query: EvalQuery) -> list[str]:
        run = runs.get(query.qid)
        allowed = run.allowed if isinstance(run, QueryRun) else None
        graded = sorted(query.judgments.items(), key=lambda item: -item[1])
        return [pid for pid, _ in graded if allowed is None or pid in allowed]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    return {
        "queries": len(queries),
        "judged": len(judged),
        "no_match": len(unmatched),
        "ndcg@10": mean([ndcg_at(ranking(q.qid), q.judgments) for q in judged]),
        "recall@20": mean([recall_at(ranking(q.qid), q.judgments) for q in judged]),
        "mrr": mean([reciprocal_rank(ranking(q.qid), q.judgments) for q in judged]),
        "no_match_empty": mean([0.0 if ranking(q.qid) else 1.0 for q in unmatched]),
        "judged_empty": sum(1 for q in judged if not ranking(q.qid)),
        "ndcg@10_ceiling": mean([ndcg_at(oracle(q), q.judgments) for q in judged]),
        "recall@20_ceiling": mean([recall_at(oracle(q), q.judgments) for q in judged]),
    }


async def build_index(path: Path, catalog: Path, embedder: Embedder | None, ranking: RankingConfig | None = None) -> SQLiteIndex:
    """An open :class:`SQLiteIndex` at ``path`` holding ``catalog`` (the caller closes it)."""
    parsed = await asyncio.to_thread(parse, catalog)
    index = SQLiteIndex(path, embedder, ranking=ranking)
    await index.open()
    try:
        await index.upsert_products(parsed.products, source=str(catalog))
    except BaseException:
        await index.close()
        raise
    return index


async def evaluate_retrieval_async(
    catalog: Path,
    dataset: Path,
    *,
    constraints_mode: ConstraintsMode = "system",
    mode: SearchMode = "hybrid",
    run_out: Path | None = None,
    embedder: Embedder | Literal["auto"] | None = "auto",
    ranking: RankingConfig | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_retrieval` for callers already inside an event loop."""
    queries = await asyncio.to_thread(load_dataset, dataset)
    chosen: Embedder | None = (await asyncio.to_thread(make_embedder, "auto")) if embedder == "auto" else embedder
    if mode == "bm25":
        chosen = None
    elif chosen is None:
        raise ValueError(f"mode {mode!r} needs an embedder, and none is available")
    config = RankingConfig.for_mode(RankingConfig() if ranking is None else ranking, mode)
    with tempfile.TemporaryDirectory(prefix="shopkeeper-eval-") as tmp:
        index = await build_index(Path(tmp) / "kb.db", catalog, chosen, config)
        try:
            products = await index.product_count()
            runs = await run_queries(index, queries, constraints_mode=constraints_mode)
        finally:
            await index.close()
    metrics: dict[str, Any] = dict(mean_metrics(queries, runs))
    metrics.update(
        catalog=str(catalog),
        dataset=str(dataset),
        products=products,
        constraints_mode=constraints_mode,
        mode=mode,
        embedder=chosen.name if chosen is not None else None,
    )
    if run_out is not None:
        lines = [json.dumps({"qid": q.qid, "ranking": runs[q.qid].ranking[:RANKING_DEPTH]}) for q in queries]
        await asyncio.to_thread(Path(run_out).write_text, "\n".join(lines) + "\n", encoding="utf-8")
    return metrics


def evaluate_retrieval(
    catalog: Path,
    dataset: Path,
    *,
    constraints_mode: ConstraintsMode = "system",
    mode: SearchMode = "hybrid",
    run_out: Path | None = None,
    embedder: Embedder | Literal["auto"] | None = "auto",
    ranking: RankingConfig | None = None,
) -> dict[str, Any]:
    """Index ``catalog`` in a temporary index, run ``dataset`` and return the metrics.

    ``mode`` picks the ranking: ``hybrid`` (the default the bot runs), ``bm25`` (no
    embedder) or ``dense``. ``run_out``, when given, receives one
    ``{"qid", "ranking": [ids best first, ≤ 20]}`` line per query. ``embedder``
    overrides the configured one (``"auto"``: :func:`kb.embedder.make_embedder`).
    The returned dict holds ``ndcg@10``, ``recall@20``, ``mrr``, ``no_match_empty``,
    the query counts and what was run; :func:`format_table` prints it.
    Blocking: it runs its own event loop (use :func:`evaluate_retrieval_async` from
    async code).
    """
    return asyncio.run(
        evaluate_retrieval_async(
            catalog, dataset, constraints_mode=constraints_mode, mode=mode, run_out=run_out, embedder=embedder, ranking=ranking
        )
    )


def format_table(metrics: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of one or more :func:`evaluate_retrieval` results, one row each.

    The last column is the best nDCG@10 / Recall@20 any ranking could reach under
    the same filters.
    """
    rows = [metrics] if isinstance(metrics, Mapping) else list(metrics)
    lines = [
        "| mode | constraints | nDCG@10 | Recall@20 | MRR | no-match empty | ceiling nDCG / Recall |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        no_match = int(row.get("no_match", 0))
        empty = round(float(row.get("no_match_empty", 0.0)) * no_match)
        ceiling = f"{float(row.get('ndcg@10_ceiling', 1.0)):.3f} / {float(row.get('recall@20_ceiling', 1.0)):.3f}"
        lines.append(
            f"| {row.get('mode', '')} | {row.get('constraints_mode', '')} | {float(row['ndcg@10']):.3f} | "
            f"{float(row['recall@20']):.3f} | {float(row['mrr']):.3f} | {empty}/{no_match} | {ceiling} |"
        )
    return "\n".join(lines)
