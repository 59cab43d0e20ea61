"""What happens to a verified, parsed platform delivery, however it arrived (webhook or polling).

Each message is accepted into the inbox once (a replay of the same platform id
is counted as a duplicate and not processed again) and handed to the turn
worker; each delivery receipt is recorded, and a receipt saying the shopper
blocked us or opted out marks the identity unreachable.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.runtime import Runtime
from channels.base import ParsedWebhook


@dataclass(frozen=True, slots=True)
class IntakeCounts:
    accepted: int
    duplicates: int
    receipts: int


async def ingest(runtime: Runtime, channel: str, parsed: ParsedWebhook) -> IntakeCounts:
    accepted = 0
    for message in parsed.messages:
        result = await runtime.store.accept(message)
        if result.is_new:
            accepted += 1
            runtime.worker.submit(result.inbox_id, message)
    for receipt in parsed.receipts:
        await runtime.store.record_receipt(channel, receipt.platform_message_id, receipt.status, receipt.error_code)
        if receipt.unreachable and receipt.chat_id:
            await runtime.store.mark_unreachable(channel, receipt.chat_id)
    runtime.metrics.webhooks.labels(channel, "accepted").inc(accepted)
    runtime.metrics.webhooks.labels(channel, "duplicate").inc(len(parsed.messages) - accepted)
    return IntakeCounts(accepted, len(parsed.messages) - accepted, len(parsed.receipts))
