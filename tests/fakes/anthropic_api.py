"""A scripted fake of Anthropic's Messages API, for the real ``anthropic`` SDK.

:class:`FakeMessagesAPI` answers ``POST /v1/messages`` like the service does: a
message with text and/or ``tool_use`` blocks, a ``stop_reason`` and a ``usage``
block whose cache fields follow the request's ``cache_control`` breakpoints (a
prefix seen before is a cache read, a new one a cache write), or an error body
with the right status (429 with ``retry-after``, 500, 529 ``overloaded_error``),
or a transport failure (timeout, refused connection).

Plug it into the SDK at the transport seam::

    fake = FakeMessagesAPI([reply("Hello!")])
    client = fake.client()          # AsyncAnthropic over httpx2.MockTransport, no socket
    # or serve fake.asgi_app() on loopback and point base_url at it

Each step of the script is a :class:`Step` or a callable ``(request body) -> Step``
(a "model" that reacts to what it was sent); an exhausted script repeats its
``default`` step. Every request is recorded (headers and JSON body) in
:attr:`FakeMessagesAPI.requests`. The anthropic SDK of this project talks
``httpx2``, so the mock transport is ``httpx2.MockTransport``.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anthropic
import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

FAKE_API_KEY = "sk-ant-api03-FAKE-test-key-0123456789abcdef"
FAKE_BASE_URL = "http://anthropic.fake"
CACHE_LOOKBACK_BLOCKS = 20


@dataclass(frozen=True)
class Step:
    """One scripted answer of the fake API."""

    content: tuple[dict[str, Any], ...] = ()
    stop_reason: str = "end_turn"
    status: int = 200
    error_type: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    transport_error: type[Exception] | None = None
    output_tokens: int = 30


Model = Callable[[dict[str, Any]], Step]


def text(message: str, stop_reason: str = "end_turn") -> Step:
    """A plain text answer."""
    return Step(content=({"type": "text", "text": message},), stop_reason=stop_reason)


def tool_call(name: str, arguments: dict[str, Any], *, preamble: str = "") -> Step:
    """A turn that calls one tool (``stop_reason`` "tool_use")."""
    return tool_calls([(name, arguments)], preamble=preamble)


def tool_calls(calls: Sequence[tuple[str, dict[str, Any]]], *, preamble: str = "") -> Step:
    blocks: list[dict[str, Any]] = [{"type": "text", "text": preamble}] if preamble else []
    blocks += [{"type": "tool_use", "id": f"toolu_{next(_ids):06d}", "name": n, "input": a} for n, a in calls]
    return Step(content=tuple(blocks), stop_reason="tool_use")


def reply(message: str, product_ids: Sequence[str] = (), source_ids: Sequence[str] = ()) -> Step:
    """The structured end of a turn: a ``send_reply`` tool call."""
    return tool_call("send_reply", {"text": message, "product_ids": list(product_ids), "source_ids": list(source_ids)})


def error(status: int, error_type: str, message: str = "scripted failure", headers: dict[str, str] | None = None) -> Step:
    return Step(status=status, error_type=error_type, content=({"type": "text", "text": message},), headers=headers or {})


def rate_limited(retry_after: str = "0") -> Step:
    return error(429, "rate_limit_error", "Number of requests has exceeded your rate limit", {"retry-after": retry_after})


def server_error() -> Step:
    return error(500, "api_error", "Internal server error")


def overloaded() -> Step:
    return error(529, "overloaded_error", "Overloaded")


def timeout() -> Step:
    return Step(transport_error=httpx2.ReadTimeout)


def refused() -> Step:
    return Step(transport_error=httpx2.ConnectError)


_ids = itertools.count(1)


@dataclass(frozen=True)
class RecordedRequest:
    headers: dict[str, str]
    body: dict[str, Any]


def estimate_tokens(value: Any) -> int:
    """About four characters a token, like the service's tokenizer on English text."""
    return max(1, len(json.dumps(value, ensure_ascii=False, sort_keys=True)) // 4)


class FakeMessagesAPI:
    """A scripted Messages API with prompt-cache accounting."""

    def __init__(
        self,
        script: Iterable[Step | Model] = (),
        *,
        default: Step | Model | None = None,
        latency: float | Callable[[], float] = 0.0,
    ) -> None:
        self.script: deque[Step | Model] = deque(script)
        self.default = default or reply("Sorry, the fake model has nothing scripted.")
        self.latency = latency
        self.requests: list[RecordedRequest] = []
        self.server_seconds = 0.0  # time spent inside the fake (its "model time"), for benchmarks
        self._cache: set[str] = set()

    # -- scripting -------------------------------------------------------------

    def queue(self, *steps: Step | Model) -> None:
        self.script.extend(steps)

    def client(self, **options: Any) -> anthropic.AsyncAnthropic:
        """A real AsyncAnthropic client whose transport is this fake (no socket is opened)."""
        options.setdefault("max_retries", 0)
        return anthropic.AsyncAnthropic(
            api_key=FAKE_API_KEY,
            base_url=FAKE_BASE_URL,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self.handler)),
            **options,
        )

    # -- the protocol ------------------------------------------------------------

    async def handler(self, request: httpx2.Request) -> httpx2.Response:
        started = time.perf_counter()
        try:
            if request.method != "POST" or not request.url.path.endswith("/v1/messages"):
                return httpx2.Response(404, json=_error_body("not_found_error", "unknown route"))
            body = json.loads(request.content)
            status, headers, payload = self._answer(dict(request.headers), body)
            await self._think()
            return httpx2.Response(status, headers=headers, json=payload)
        finally:
            self.server_seconds += time.perf_counter() - started

    def asgi_app(self) -> Starlette:
        """The same fake as an ASGI app, to serve on loopback (transport errors are not available there)."""

        async def messages(request: Request) -> JSONResponse:
            body = json.loads(await request.body())
            status, headers, payload = self._answer(dict(request.headers), body)
            await self._think()
            return JSONResponse(payload, status_code=status, headers=headers)

        return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])

    async def _think(self) -> None:
        """The model's latency: a fixed number of seconds or a callable drawing one per call."""
        seconds = self.latency() if callable(self.latency) else self.latency
        if seconds:
            await asyncio.sleep(seconds)

    def _answer(self, headers: dict[str, str], body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        self.requests.append(RecordedRequest({k.lower(): v for k, v in headers.items()}, body))
        step = self.script.popleft() if self.script else self.default
        if callable(step):
            step = step(body)
        if step.transport_error is not None:
            raise step.transport_error("scripted transport failure")
        if step.status != 200:
            message = step.content[0]["text"] if step.content else "error"
            return step.status, dict(step.headers), _error_body(step.error_type, message)
        usage = self._usage(body, step)
        message = {
            "id": f"msg_fake_{next(_ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": list(step.content),
            "stop_reason": step.stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        return 200, dict(step.headers), message

    def _usage(self, body: dict[str, Any], step: Step) -> dict[str, int]:
        """Token counts with prompt caching: tools → system → messages, breakpoints where cache_control is."""
        blocks: list[Any] = list(body.get("tools") or [])
        system = body.get("system") or []
        blocks += [{"type": "text", "text": system}] if isinstance(system, str) else list(system)
        for message in body.get("messages", []):
            content = message["content"]
            blocks += [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        total = 0
        digest = hashlib.sha256(str(body.get("model")).encode())
        prefixes: list[tuple[str, int]] = []  # (hash of the prompt up to this block, tokens so far)
        breakpoints: list[int] = []
        for position, block in enumerate(blocks):
            plain = {k: v for k, v in block.items() if k != "cache_control"} if isinstance(block, dict) else block
            digest.update(json.dumps(plain, sort_keys=True, ensure_ascii=False).encode())
            total += estimate_tokens(plain)
            prefixes.append((digest.copy().hexdigest(), total))
            if isinstance(block, dict) and block.get("cache_control"):
                breakpoints.append(position)
        # like the service: from each breakpoint, look back up to 20 blocks for a prefix cached earlier
        read = 0
        for position in breakpoints:
            for earlier in range(position, max(-1, position - CACHE_LOOKBACK_BLOCKS - 1), -1):
                key, tokens = prefixes[earlier]
                if key in self._cache:
                    read = max(read, tokens)
                    break
        written = 0
        if breakpoints and prefixes[breakpoints[-1]][0] not in self._cache:
            written = prefixes[breakpoints[-1]][1] - read
        self._cache.update(prefixes[position][0] for position in breakpoints)
        return {
            "input_tokens": total - read - written,
            "output_tokens": step.output_tokens,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": written,
        }

    # -- reading what was sent ------------------------------------------------------

    @property
    def last(self) -> dict[str, Any]:
        return self.requests[-1].body


def sent_key(headers: dict[str, str]) -> str:
    """The API key a request carried (this SDK sends it as a bearer token; older ones as x-api-key)."""
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def request_text(body: dict[str, Any]) -> str:
    """Everything a request says (system, messages, tool results) as one string, for scripted models."""
    parts: list[str] = []
    system = body.get("system") or []
    parts += [system] if isinstance(system, str) else [b.get("text", "") for b in system]
    for message in body.get("messages", []):
        content = message["content"]
        if isinstance(content, str):
            parts.append(content)
            continue
        for block in content:
            if block.get("type") == "text":
                parts.append(block["text"])
            elif block.get("type") == "tool_result":
                inner = block.get("content")
                parts.append(inner if isinstance(inner, str) else json.dumps(inner, ensure_ascii=False))
    return "\n".join(parts)


def system_text(body: dict[str, Any]) -> str:
    system = body.get("system") or []
    return system if isinstance(system, str) else "\n".join(b.get("text", "") for b in system)


def latest_shopper_text(body: dict[str, Any]) -> str:
    """The last text block of the last user message (the shopper's words this turn)."""
    for message in reversed(body.get("messages", [])):
        if message["role"] != "user" or isinstance(message["content"], str):
            continue
        texts = [b["text"] for b in message["content"] if b.get("type") == "text"]
        if texts:
            return str(texts[-1])
    return ""
