"""Constraint extraction through Claude, and the offline extractor, on the same labelled cases.

The real anthropic SDK talks to :class:`tests.fakes.anthropic_api.FakeMessagesAPI`
over ``httpx2.MockTransport`` (no socket). For the Claude extractor the fake replays
each message's labelled output as the ``extract_constraints`` tool call, so its test
checks the schema and the plumbing (the request, validation, conversion); the offline
extractor is checked against the labels themselves, with the same scorer
(:func:`bot.constraints_eval.score_pair`).
"""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.claude_constraints import CONSTRAINTS_SCHEMA, EXTRACT_CONSTRAINTS, ClaudeConstraintExtractor, constraints_from_tool
from bot.constraints import extract_constraints
from bot.constraints_eval import DEFAULT_DATASET, FIELDS, score_pair
from bot.messages import InboundMessage
from bot.metrics import Metrics
from bot.prompting import strip_invisible
from bot.runtime import open_runtime
from bot.settings import Settings
from tests.fakes.anthropic_api import FakeMessagesAPI, Step, overloaded, reply, server_error, text, timeout, tool_call
from tests.support.shared_data import require

MODEL = "claude-sonnet-5-5"
# the labelled dev set lives in the shared data folder next to the project; without it the comparison fails
CASES: list[dict[str, Any]] = (
    [json.loads(line) for line in DEFAULT_DATASET.read_text(encoding="utf-8").splitlines() if line.strip()]
    if DEFAULT_DATASET.exists()
    else []
)
LABELS = {case["text"]: case["expected"] for case in CASES}
# the extractor strips invisible characters (a zero-width joiner inside an emoji) before sending
SENT = {strip_invisible(text).strip(): expected for text, expected in LABELS.items()}


def shopper_message(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    match = re.search(r"<shopper_message>(.*)</shopper_message>", content, re.DOTALL)
    assert match, content
    return str(json.loads(match.group(1)))


def labelled_model(body: dict[str, Any]) -> Step:
    """A model that answers every message with its labelled constraints."""
    return tool_call(EXTRACT_CONSTRAINTS, SENT[shopper_message(body)])


def micro_f1(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> float:
    tp = fp = fn = 0
    for predicted, expected in pairs:
        for a, b, c in score_pair(predicted, expected).values():
            tp, fp, fn = tp + a, fp + b, fn + c
    return 2 * tp / (2 * tp + fp + fn)


async def test_both_extractors_on_the_same_labelled_cases() -> None:
    require(DEFAULT_DATASET)
    assert len(CASES) == 100
    fake = FakeMessagesAPI(default=labelled_model)
    client = fake.client()
    metrics = Metrics()
    extractor = ClaudeConstraintExtractor(client, model=MODEL, prometheus=metrics)
    claude, offline = [], []
    try:
        for case in CASES:
            language = case["language"]
            claude.append(((await extractor.extract(case["text"], language=language)).to_dict(), case["expected"]))
            offline.append((extract_constraints(case["text"], language=language).to_dict(), case["expected"]))
    finally:
        await client.close()
    # the Claude path: every labelled output survives the schema, validation and conversion unchanged
    assert [predicted for predicted, _ in claude] == [expected for _, expected in claude]
    assert micro_f1(claude) == 1.0
    # the offline path, against the labels (the goal)
    assert micro_f1(offline) >= 0.90
    # every request forced the one tool whose schema is the evaluation schema, the message passed as data
    first = fake.requests[0].body
    assert first["tool_choice"] == {"type": "tool", "name": EXTRACT_CONSTRAINTS}
    assert [t["name"] for t in first["tools"]] == [EXTRACT_CONSTRAINTS]
    assert set(first["tools"][0]["input_schema"]["required"]) == {f.split(".")[0] for f in FIELDS}
    assert first["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert len(fake.requests) == 100
    rendered = metrics.render().decode()
    assert 'shopkeeper_llm_cache_total{purpose="constraints",result="hit"} 99.0' in rendered
    assert "shopkeeper_llm_fallbacks_total{" not in rendered


def _broken(change: dict[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = copy.deepcopy(LABELS["hi! lookin for a bday gift for my mom, under $50 pls 🎂"])
    for path, value in change.items():
        target = payload
        *parents, leaf = path.split(".")
        for name in parents:
            target = target[name]
        if value is _MISSING:
            del target[leaf]
        else:
            target[leaf] = value
    return payload


_MISSING = object()
MESSAGE = "hi! lookin for a bday gift for my mom, under $50 pls 🎂"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (tool_call(EXTRACT_CONSTRAINTS, _broken({"budget.currency": "dollars"})), "malformed"),
        (tool_call(EXTRACT_CONSTRAINTS, _broken({"budget.max": "fifty"})), "malformed"),
        (tool_call(EXTRACT_CONSTRAINTS, _broken({"sizes": [{"system": "euro", "value": "42"}]})), "malformed"),
        (tool_call(EXTRACT_CONSTRAINTS, _broken({"dietary": ["paleo"]})), "malformed"),
        (tool_call(EXTRACT_CONSTRAINTS, _broken({"recipient": "my mom"})), "malformed"),
        (tool_call(EXTRACT_CONSTRAINTS, _broken({"quantity": -2})), "malformed"),
        (tool_call(EXTRACT_CONSTRAINTS, _broken({"is_correction": "no"})), "malformed"),
        (tool_call(EXTRACT_CONSTRAINTS, _broken({"occasion": _MISSING})), "malformed"),
        (tool_call(EXTRACT_CONSTRAINTS, _broken({"discount": 90})), "malformed"),
        (text("Budget: under 50 dollars."), "malformed"),
        (reply("wrong tool"), "malformed"),
        (overloaded(), "overloaded"),
        (server_error(), "server_error"),
        (timeout(), "timeout"),
    ],
)
async def test_a_failed_or_malformed_extraction_falls_back_to_the_offline_extractor(answer: Step, reason: str) -> None:
    fake = FakeMessagesAPI([answer])
    client = fake.client()
    metrics = Metrics()
    try:
        extracted = await ClaudeConstraintExtractor(client, model=MODEL, prometheus=metrics).extract(MESSAGE, language="en")
    finally:
        await client.close()
    assert extracted == extract_constraints(MESSAGE, language="en")
    assert extracted.budget.max == 50 and extracted.recipient == "mother"
    assert f'shopkeeper_llm_fallbacks_total{{purpose="constraints",reason="{reason}"}} 1.0' in metrics.render().decode()


def test_the_schema_and_the_validator_agree_on_the_closed_vocabularies() -> None:
    properties = CONSTRAINTS_SCHEMA["properties"]
    labelled = constraints_from_tool(LABELS[MESSAGE])
    assert labelled.to_dict() == LABELS[MESSAGE]
    for recipient in properties["recipient"]["enum"]:
        constraints_from_tool({**LABELS[MESSAGE], "recipient": recipient})
    for label in properties["dietary"]["items"]["enum"]:
        assert constraints_from_tool({**LABELS[MESSAGE], "dietary": [label]}).dietary == (label,)


async def test_the_engine_reads_constraints_through_claude_when_configured(settings: Settings) -> None:
    # the offline extractor reads nothing in this message; the model reads a budget and an exclusion
    message = "something for a hike, nothing pricier than forty and please not in red"
    assert extract_constraints(message, language="en").budget.max is None
    extracted = {**LABELS[MESSAGE], "budget": {"max": 40, "min": None, "currency": None}, "recipient": None,
                 "occasion": None, "colors_exclude": ["red"]}
    fake = FakeMessagesAPI([tool_call(EXTRACT_CONSTRAINTS, extracted)])
    client = fake.client()
    try:
        async with open_runtime(settings) as runtime:
            runtime.engine.constraint_extractor = ClaudeConstraintExtractor(client, model=MODEL, prometheus=runtime.metrics)
            inbound = InboundMessage("web", "hike-1", "hiker", "hiker", message, datetime.now(UTC))
            replies = await runtime.engine.handle(inbound)
            conversation = await runtime.store.open_conversation("web", "hiker")
            greeting = InboundMessage("web", "hike-2", "hiker", "hiker", "thanks!", datetime.now(UTC))
            await runtime.engine.handle(greeting)  # thanks: no constraint to read, no call
    finally:
        await client.close()
    assert conversation is not None
    assert conversation.context["constraints"]["budget"]["max"] == 40
    assert conversation.context["constraints"]["colors_exclude"] == ["red"]
    assert replies and all(card.price <= 40 for r in replies for card in r.products)
    assert len(fake.requests) == 1
