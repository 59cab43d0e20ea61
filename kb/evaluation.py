"""Product-search quality on a judged query set (``shopkeeper eval retrieval``).

:func:`evaluate_retrieval` indexes a catalog into a temporary embedded index and
runs every query of a dataset through the path the bot takes for a shopper's
message:

1. :func:`kb.query.clean_query` keeps the product words (and notices "in stock");
2. the constraints become hard filters, from one of three sources
   (``constraints_mode``): ``system`` — the bot's own offline extractor
   :func:`bot.constraints.extract_constraints` then
   :func:`bot.personalization.filters_for`; ``labeled`` — the dataset's labeled
   ``max_price`` / ``min_price`` / ``in_stock_only`` / ``brand``; ``none``;
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
judgments: the share that came back empty.
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
from kb.index import BaseIndex
from kb.ingest import parse
from kb.models import SearchFilters
from kb.query import clean_query
from kb.sqlite_index import RankingConfig, SearchMode, SQLiteIndex

ConstraintsMode = Literal["system", "labeled", "none"]
RANKING_DEPTH = 20
NDCG_DEPTH = 10

__all__ = [
    "ConstraintsMode",
    "EvalQuery",
    "evaluate_retrieval",
    "evaluate_retrieval_async",
    "format_table",
    "load_dataset",
    "mean_metrics",
    "ndcg_at",
    "recall_at",
    "reciprocal_rank",
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


def system_filters(query: EvalQuery, *, brands: Iterable[str], in_stock_only: bool) -> SearchFilters:
    """Filters the bot derives itself: its offline constraint extractor, then :func:`filters_for`."""
    from bot.constraints import extract_constraints
    from bot.personalization import filters_for

    constraints = extract_constraints(query.query, language=query.language, brands=tuple(brands))
    return filters_for(constraints, lang=query.language, in_stock_only=in_stock_only)


async def rank_queries(
    index: BaseIndex, queries: Sequence[EvalQuery], *, constraints_mode: ConstraintsMode = "system", k: int = RANKING_DEPTH
) -> dict[str, list[str]]:
    """Each query's ranking (product ids, best first, at most ``k``) through the bot's search path."""
    brands = await index.brands()
    rankings: dict[str, list[str]] = {}
    for query in queries:
        cleaned = clean_query(query.query, query.language)
        if constraints_mode == "system":
            filters = system_filters(query, brands=brands, in_stock_only=cleaned.in_stock_only)
        elif constraints_mode == "labeled":
            filters = labeled_filters(query)
        else:
            filters = SearchFilters()
        hits = await index.search(cleaned.text, filters, k=k, kinds=("product",))
        rankings[query.qid] = [hit.id for hit in hits]
    return rankings


def mean_metrics(queries: Sequence[EvalQuery], rankings: Mapping[str, Sequence[str]]) -> dict[str, float | int]:
    """nDCG@10, Recall@20, MRR over judged queries and the empty share over no-match queries."""
    judged = [q for q in queries if q.judgments]
    unmatched = [q for q in queries if not q.judgments]

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    return {
        "queries": len(queries),
        "judged": len(judged),
        "no_match": len(unmatched),
        "ndcg@10": mean([ndcg_at(rankings.get(q.qid, []), q.judgments) for q in judged]),
        "recall@20": mean([recall_at(rankings.get(q.qid, []), q.judgments) for q in judged]),
        "mrr": mean([reciprocal_rank(rankings.get(q.qid, []), q.judgments) for q in judged]),
        "no_match_empty": mean([0.0 if rankings.get(q.qid) else 1.0 for q in unmatched]),
        "judged_empty": sum(1 for q in judged if not rankings.get(q.qid)),
    }


async def evaluate_retrieval_async(
    catalog: Path,
    dataset: Path,
    *,
    constraints_mode: ConstraintsMode = "system",
    mode: SearchMode = "hybrid",
    run_out: Path | None = None,
    embedder: Embedder | None | Literal["auto"] = "auto",
    ranking: RankingConfig | None = None,
) -> dict[str, Any]:
    """:func:`evaluate_retrieval` for callers already inside an event loop."""
    queries = await asyncio.to_thread(load_dataset, dataset)
    parsed = await asyncio.to_thread(parse, catalog)
    chosen: Embedder | None = (await asyncio.to_thread(make_embedder, "auto")) if embedder == "auto" else embedder
    if mode == "bm25":
        chosen = None
    elif chosen is None:
        raise ValueError(f"mode {mode!r} needs an embedder, and none is available")
    config = RankingConfig() if ranking is None else ranking
    with tempfile.TemporaryDirectory(prefix="shopkeeper-eval-") as tmp:
        index = SQLiteIndex(Path(tmp) / "kb.db", chosen, ranking=RankingConfig.for_mode(config, mode))
        async with index:
            await index.upsert_products(parsed.products, source=str(catalog))
            rankings = await rank_queries(index, queries, constraints_mode=constraints_mode)
    metrics: dict[str, Any] = dict(mean_metrics(queries, rankings))
    metrics.update(
        catalog=str(catalog),
        dataset=str(dataset),
        products=len(parsed.products),
        constraints_mode=constraints_mode,
        mode=mode,
        embedder=chosen.name if chosen is not None else None,
    )
    if run_out is not None:
        lines = [json.dumps({"qid": q.qid, "ranking": rankings[q.qid][:RANKING_DEPTH]}) for q in queries]
        await asyncio.to_thread(Path(run_out).write_text, "\n".join(lines) + "\n", encoding="utf-8")
    return metrics


def evaluate_retrieval(
    catalog: Path,
    dataset: Path,
    *,
    constraints_mode: ConstraintsMode = "system",
    mode: SearchMode = "hybrid",
    run_out: Path | None = None,
    embedder: Embedder | None | Literal["auto"] = "auto",
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
    """A Markdown table of one or more :func:`evaluate_retrieval` results, one row each."""
    rows = [metrics] if isinstance(metrics, Mapping) else list(metrics)
    header = "| mode | constraints | nDCG@10 | Recall@20 | MRR | no-match empty | judged / no-match |"
    lines = [header, "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        no_match = int(row.get("no_match", 0))
        empty = round(float(row.get("no_match_empty", 0.0)) * no_match)
        lines.append(
            f"| {row.get('mode', '')} | {row.get('constraints_mode', '')} | {float(row['ndcg@10']):.3f} | "
            f"{float(row['recall@20']):.3f} | {float(row['mrr']):.3f} | {empty}/{no_match} | "
            f"{row.get('judged', 0)} / {no_match} |"
        )
    return "\n".join(lines)
