"""Score :func:`bot.constraints.extract_constraints` against a labelled JSONL set.

Each dataset line is ``{"id", "text", "language", "expected": {...}}`` (see
``shared/data/README.md``). The extractor gets the text and the language as a hint.

Counting scheme (item-level precision/recall/F1, micro-averaged):

* **List fields** (``sizes``, ``colors_include``, ``colors_exclude``,
  ``materials_include``, ``materials_exclude``, ``dietary``, ``brands_include``,
  ``brands_exclude``) are compared as sets per message: every predicted item also in
  the gold set is a true positive (TP), every other predicted item a false positive
  (FP), every gold item not predicted a false negative (FN). A size is the pair
  ``(system, value)``; strings are compared exactly after trimming whitespace.
* **Scalar fields** (``budget.max``, ``budget.min``, ``budget.currency``,
  ``deadline``, ``recipient``, ``occasion``, ``quantity``) are one item when non-null.
  Equal values give a TP; a wrong value gives one FP *and* one FN; a value predicted
  where the gold is null is a FP; a missed gold value is a FN. Amounts are compared
  as decimals rounded to cents. A deadline is one item, the triple
  ``(relative, weekday, days_from_now)`` with ``relative`` lowercased and
  whitespace-normalised: it counts only when all three agree.
* **is_correction** is one item when true (the positive class): TP when both are
  true, FP when only the prediction is, FN when only the gold is.

Per field, precision = TP/(TP+FP) and recall = TP/(TP+FN), with the vacuous value 1.0
when the denominator is 0; F1 is their harmonic mean (0.0 when TP is 0 unless the
field has no gold and no predicted item at all, then 1.0). Micro P/R/F1 sum TP, FP and
FN over all fields and messages. Also reported: macro-F1 (mean over the fields that
have gold or predicted items) and the exact-match rate (messages whose whole
prediction equals the gold).

Run ``python -m bot.constraints_eval [dataset.jsonl] [--predictions out.jsonl]``: it
prints a per-field table and, on the last line, the metrics as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Hashable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final

from bot.constraints import extract_constraints

__all__ = ["DEFAULT_DATASET", "FIELDS", "evaluate", "format_report", "main", "score_pair"]

LIST_FIELDS: Final = (
    "sizes",
    "colors_include",
    "colors_exclude",
    "materials_include",
    "materials_exclude",
    "dietary",
    "brands_include",
    "brands_exclude",
)
SCALAR_FIELDS: Final = ("budget.max", "budget.min", "budget.currency", "deadline", "recipient", "occasion", "quantity")
FIELDS: Final = (
    "budget.max",
    "budget.min",
    "budget.currency",
    "sizes",
    "colors_include",
    "colors_exclude",
    "materials_include",
    "materials_exclude",
    "dietary",
    "deadline",
    "recipient",
    "occasion",
    "brands_include",
    "brands_exclude",
    "quantity",
    "is_correction",
)
DEFAULT_DATASET: Final = Path(__file__).resolve().parents[2] / "shared" / "data" / "eval" / "constraints_dev.jsonl"


def _amount(value: Any) -> Hashable:
    if value is None:
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(value)


def _field_value(record: Mapping[str, Any], name: str) -> Any:
    if name.startswith("budget."):
        budget = record.get("budget") or {}
        return budget.get(name.split(".", 1)[1])
    return record.get(name)


def _items(record: Mapping[str, Any], name: str) -> set[Hashable]:
    """The set of comparable items one field of one record contributes."""
    value = _field_value(record, name)
    if name in LIST_FIELDS:
        items: set[Hashable] = set()
        for item in value or ():
            if isinstance(item, Mapping):
                items.add((str(item.get("system", "")).strip(), str(item.get("value", "")).strip()))
            else:
                items.add(str(item).strip())
        return items
    if name == "is_correction":
        return {True} if value else set()
    if value is None:
        return set()
    if name in ("budget.max", "budget.min"):
        return {_amount(value)}
    if name == "deadline":
        relative = " ".join(str(value.get("relative") or "").lower().split())
        return {(relative, value.get("weekday"), value.get("days_from_now"))}
    return {value if not isinstance(value, str) else value.strip()}


def score_pair(predicted: Mapping[str, Any], expected: Mapping[str, Any]) -> dict[str, tuple[int, int, int]]:
    """(TP, FP, FN) per field for one message, following the module's counting scheme."""
    counts: dict[str, tuple[int, int, int]] = {}
    for name in FIELDS:
        pred, gold = _items(predicted, name), _items(expected, name)
        counts[name] = (len(pred & gold), len(pred - gold), len(gold - pred))
    return counts


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    if tp:
        f1 = 2 * precision * recall / (precision + recall)
    elif fp == fn == 0:
        f1 = 1.0  # nothing expected, nothing predicted
    else:
        f1 = 0.0
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def _read_jsonl(path: Path) -> Iterable[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def evaluate(dataset: Path, predictions_out: Path | None = None) -> dict[str, Any]:
    """Run the extractor on every labelled message and score it per field and overall.

    Writes ``{"id", "predicted"}`` lines (the expected schema) to ``predictions_out``
    when given. Returns ``{"dataset", "messages", "fields": {name: {tp, fp, fn,
    support, precision, recall, f1}}, "micro": {tp, fp, fn, precision, recall, f1},
    "macro_f1", "exact_match", "errors": [ids of messages not fully right]}``.
    """
    totals = {name: [0, 0, 0] for name in FIELDS}
    exact = 0
    messages = 0
    errors: list[str] = []
    out = predictions_out.open("w", encoding="utf-8") if predictions_out is not None else None
    try:
        for record in _read_jsonl(dataset):
            messages += 1
            predicted = extract_constraints(record["text"], language=record.get("language")).to_dict()
            if out is not None:
                out.write(json.dumps({"id": record.get("id"), "predicted": predicted}, ensure_ascii=False) + "\n")
            counts = score_pair(predicted, record["expected"])
            wrong = False
            for name, (tp, fp, fn) in counts.items():
                totals[name][0] += tp
                totals[name][1] += fp
                totals[name][2] += fn
                wrong = wrong or bool(fp or fn)
            if wrong:
                errors.append(str(record.get("id")))
            else:
                exact += 1
    finally:
        if out is not None:
            out.close()

    fields: dict[str, dict[str, Any]] = {}
    for name, (tp, fp, fn) in totals.items():
        fields[name] = {"tp": tp, "fp": fp, "fn": fn, "support": tp + fn, **_prf(tp, fp, fn)}
    tp_all = sum(v[0] for v in totals.values())
    fp_all = sum(v[1] for v in totals.values())
    fn_all = sum(v[2] for v in totals.values())
    active = [f["f1"] for f in fields.values() if f["tp"] + f["fp"] + f["fn"]]
    return {
        "dataset": str(dataset),
        "messages": messages,
        "fields": fields,
        "micro": {"tp": tp_all, "fp": fp_all, "fn": fn_all, **_prf(tp_all, fp_all, fn_all)},
        "macro_f1": round(sum(active) / len(active), 4) if active else 1.0,
        "exact_match": round(exact / messages, 4) if messages else 0.0,
        "errors": errors,
    }


def format_report(metrics: Mapping[str, Any]) -> str:
    """A readable per-field table of the metrics :func:`evaluate` returns."""
    header = f"{'field':<20}{'support':>8}{'tp':>6}{'fp':>6}{'fn':>6}{'P':>8}{'R':>8}{'F1':>8}"
    lines = [f"constraints eval: {metrics.get('messages', 0)} messages ({metrics.get('dataset', '')})", header, "-" * len(header)]
    for name, f in metrics["fields"].items():
        lines.append(
            f"{name:<20}{f['support']:>8}{f['tp']:>6}{f['fp']:>6}{f['fn']:>6}"
            f"{f['precision']:>8.3f}{f['recall']:>8.3f}{f['f1']:>8.3f}"
        )
    micro = metrics["micro"]
    lines.append("-" * len(header))
    lines.append(
        f"{'micro':<20}{micro['tp'] + micro['fn']:>8}{micro['tp']:>6}{micro['fp']:>6}{micro['fn']:>6}"
        f"{micro['precision']:>8.3f}{micro['recall']:>8.3f}{micro['f1']:>8.3f}"
    )
    lines.append(f"macro F1 {metrics['macro_f1']:.3f}   exact match {metrics['exact_match']:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI: print the per-field report, then the metrics as one JSON object on the last line."""
    parser = argparse.ArgumentParser(description="Evaluate the offline shopper-constraint extractor.")
    parser.add_argument("dataset", nargs="?", type=Path, default=DEFAULT_DATASET, help="labelled JSONL file")
    parser.add_argument("--predictions", type=Path, default=None, help="write {id, predicted} lines here")
    args = parser.parse_args(argv)
    if not args.dataset.exists():
        print(f"dataset not found: {args.dataset}", file=sys.stderr)
        return 2
    metrics = evaluate(args.dataset, args.predictions)
    print(format_report(metrics))
    print(json.dumps(metrics, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
