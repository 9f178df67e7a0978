"""The audit log's filters, read from the query string: a bad value is a form error naming
its field, never a 500."""

from __future__ import annotations

import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms

from audit.models import Action
from audit.selectors import Filters
from core.dates import EARLIEST_DAY, LATEST_DAY


class AuditFilterForm(forms.Form):
    action = forms.ChoiceField(choices=[("", "Any action"), *Action.choices], required=False)
    actor = forms.CharField(max_length=150, required=False, strip=True)
    start = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    end = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("start", "end"):
            day = data.get(name)
            if day and not EARLIEST_DAY <= day <= LATEST_DAY:
                self.add_error(name, f"Pick a day between {EARLIEST_DAY} and {LATEST_DAY}.")
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", "The end is before the start.")
        return data

    def filters(self, timezone_name: str) -> Filters:
        """The filters, days taken in the tenant's time zone (valid forms only)."""
        data = self.cleaned_data
        zone = zoneinfo.ZoneInfo(timezone_name)
        end: date | None = data.get("end")
        return Filters(
            action=data.get("action") or "",
            actor=data.get("actor") or "",
            since=_midnight(data.get("start"), zone),
            until=_midnight(end + timedelta(days=1) if end else None, zone),
        )


def _midnight(day: date | None, zone: zoneinfo.ZoneInfo) -> datetime | None:
    return datetime.combine(day, time(), tzinfo=zone) if day else None
