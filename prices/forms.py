"""Forms of `/prices/`: add a price, end one, choose a period, choose where a re-price starts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django import forms

from core.dates import BOUNDS, EARLIEST_DAY, LATEST_DAY


def _price(label: str, required: bool = True) -> forms.DecimalField:
    """USD per million tokens: at least 0, with the 10 decimals a price is stored with."""
    return forms.DecimalField(
        label=label, required=required, min_value=0, max_digits=20, decimal_places=10
    )


def _stored_name(value: str, limit: int) -> str:
    """A provider or model as prices are stored (lower case): lowering can lengthen a name
    ("İ" becomes two characters), so the limit is checked on the stored form."""
    name = value.strip().lower()
    if len(name) > limit:
        raise forms.ValidationError(f"must be at most {limit} characters in lower case")
    return name


class PriceForm(forms.Form):
    provider = forms.CharField(max_length=64)
    model = forms.CharField(max_length=128)
    effective_from = forms.DateTimeField(
        label="Effective from (UTC)", help_text="e.g. 2026-12-01 or 2026-12-01 09:00"
    )
    input_per_mtok = _price("Input $/MTok")
    output_per_mtok = _price("Output $/MTok")
    cache_read_per_mtok = _price("Cache read $/MTok", required=False)
    cache_write_per_mtok = _price("Cache write $/MTok", required=False)

    def clean_provider(self) -> str:
        return _stored_name(self.cleaned_data["provider"], 64)

    def clean_model(self) -> str:
        return _stored_name(self.cleaned_data["model"], 128)

    def clean_effective_from(self) -> datetime:
        # The form's times are UTC whatever the server's zone: prices apply to UTC timestamps.
        value: datetime = self.cleaned_data["effective_from"]
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EndPriceForm(forms.Form):
    id = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    ended_at = forms.DateTimeField(label="End at (UTC)")

    def clean_ended_at(self) -> datetime:
        value: datetime = self.cleaned_data["ended_at"]
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class PeriodForm(forms.Form):
    """The page's period: UTC days, both included."""

    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("start", "end"):
            day = data.get(name)
            if day is not None and not EARLIEST_DAY <= day <= LATEST_DAY:
                self.add_error(name, f"must be a date {BOUNDS}")
                data.pop(name, None)
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", "must be on or after From")
        return data


class SinceForm(forms.Form):
    since = forms.DateField(label="Re-price from (UTC day)")
    # "Preview again" on a computed preview: compute a new one (calls may have arrived since).
    again = forms.BooleanField(required=False, widget=forms.HiddenInput)


class ApplyForm(forms.Form):
    """Apply a computed preview: its day and prices are the preview's."""

    preview = forms.IntegerField(min_value=1, max_value=2**63 - 1, widget=forms.HiddenInput)


def errors_text(form: forms.Form, names: dict[str, str] | None = None) -> str:
    """A form's errors on one line, each after its field's name (or `names`' for it)."""
    names = names or {}
    return "; ".join(
        f"{names.get(field, field)}: {' '.join(str(e) for e in errors)}"
        for field, errors in form.errors.items()
    )
