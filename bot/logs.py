"""Structured JSON logs that carry no personal data.

Every record is one JSON object with the time, level, logger, message and the
request and conversation ids of the work in progress (held in context
variables, so concurrent turns never mix them up). Phone numbers and e-mail
addresses in messages are replaced by a short salted hash unless debug logging
is explicitly enabled; message text is never logged by shopkeeper's own code.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
conversation_id: ContextVar[str | None] = ContextVar("conversation_id", default=None)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
PHONE = re.compile(r"(?<![\w])(?:whatsapp:)?\+?\d[\d ()-]{7,}\d")
_SALT = b"shopkeeper-log"


def hash_id(value: str) -> str:
    """A short stable pseudonym for an identifier (same input, same hash; not reversible)."""
    return "h:" + hashlib.sha256(_SALT + value.encode()).hexdigest()[:12]


def redact(text: str) -> str:
    text = EMAIL.sub(lambda m: hash_id(m.group(0)), text)
    return PHONE.sub(lambda m: hash_id(re.sub(r"\D", "", m.group(0))), text)


class JsonFormatter(logging.Formatter):
    def __init__(self, *, redact_personal_data: bool = True) -> None:
        super().__init__()
        self.redact_personal_data = redact_personal_data

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if self.redact_personal_data:
            message = redact(message)
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": message,
        }
        if (rid := request_id.get()) is not None:
            entry["request_id"] = rid
        if (cid := conversation_id.get()) is not None:
            entry["conversation_id"] = cid
        if record.exc_info:
            trace = self.formatException(record.exc_info)
            entry["exc"] = redact(trace) if self.redact_personal_data else trace
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, *, json_format: bool = True) -> None:
    """Install the JSON formatter on the root logger (DEBUG keeps personal data for troubleshooting)."""
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter(redact_personal_data=level != "DEBUG"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # request lines would carry URLs with tokens
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    logging.getLogger("telegram").setLevel(max(root.level, logging.INFO))  # PTB's debug lines carry the bot token
