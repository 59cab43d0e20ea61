"""The store's own profile: name, currency, timezone, domains and business hours.

Read from ``<data dir>/store.json`` when the store (or the demo) provided one,
otherwise from the settings. Business hours answer "are we open now?" and
"when do we open next?" in the store's timezone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.settings import Settings

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class ShopProfile:
    name: str
    currency: str
    timezone: str
    default_locale: str
    domains: tuple[str, ...] = ()
    support_email: str = ""
    # weekday -> (opening, closing), or absent when closed all day
    business_hours: dict[str, tuple[time, time]] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def load(cls, settings: Settings) -> ShopProfile:
        path = settings.data_dir / "store.json"
        if path.exists():
            return cls.from_file(path, settings)
        return cls(
            name=settings.store_name,
            currency=settings.currency,
            timezone=settings.timezone,
            default_locale=settings.default_locale,
        )

    @classmethod
    def from_file(cls, path: Path, settings: Settings) -> ShopProfile:
        data = json.loads(path.read_text(encoding="utf-8"))
        hours: dict[str, tuple[time, time]] = {}
        for day, span in (data.get("business_hours") or {}).items():
            if span:
                hours[day[:3].lower()] = (time.fromisoformat(span[0]), time.fromisoformat(span[1]))
        return cls(
            name=data.get("name", settings.store_name),
            currency=data.get("currency", settings.currency),
            timezone=data.get("timezone", settings.timezone),
            default_locale=data.get("default_locale", settings.default_locale),
            domains=tuple(data.get("domains", ())),
            support_email=data.get("support_email", ""),
            business_hours=hours,
        )

    def is_open(self, at: datetime) -> bool:
        local = at.astimezone(self.tz)
        span = self.business_hours.get(WEEKDAYS[local.weekday()])
        return span is not None and span[0] <= local.time() < span[1]

    def next_opening(self, at: datetime) -> datetime | None:
        """The next time the store opens after ``at`` (store timezone), or None if it never does."""
        local = at.astimezone(self.tz)
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            span = self.business_hours.get(WEEKDAYS[day.weekday()])
            if span is None:
                continue
            opening = datetime.combine(day, span[0], tzinfo=self.tz)
            if opening > local:
                return opening
        return None
