"""`focus_exports`: the demo's FOCUS files the validator stage checks: a plain last month,
and this month with correction rows for late usage of last month."""

from __future__ import annotations

import csv
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing import months
from tenants.models import Tenant

EVENTS = 1500


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.django_db
def test_it_writes_a_plain_month_and_one_with_late_usage_corrections(tmp_path: Path) -> None:
    call_command("seed_demo", events=EVENTS, stdout=StringIO())
    tenant = Tenant.objects.get(slug="acme")
    this_month = months.current_month(tenant.timezone, timezone.now())
    last_month = months.previous_month(this_month)
    out = StringIO()
    call_command("focus_exports", str(tmp_path), late_events=30, stdout=out)
    assert "late usage: 30 new event(s) dated last month" in out.getvalue()
    plain = _rows(tmp_path / f"focus-acme-{months.label(last_month)}.csv")
    latest = _rows(tmp_path / f"focus-acme-{months.label(this_month)}.csv")
    assert plain and not any(row["ChargeClass"] for row in plain)
    corrections = [row for row in latest if row["ChargeClass"] == "Correction"]
    # Three teams' late calls to last month, billed on this month's drafts.
    assert {row["SubAccountId"] for row in corrections} == {"search", "support", "platform"}
    assert all(row["ChargePeriodStart"].startswith(months.label(last_month)) for row in corrections)
    assert all(
        row["BillingPeriodStart"].startswith(months.label(this_month)) for row in corrections
    )
    # Run again: the same late events are duplicates, the files stay as they were.
    again = StringIO()
    before = (tmp_path / f"focus-acme-{months.label(this_month)}.csv").read_bytes()
    call_command("focus_exports", str(tmp_path), late_events=30, stdout=again)
    assert "late usage: 0 new event(s)" in again.getvalue()
    assert (tmp_path / f"focus-acme-{months.label(this_month)}.csv").read_bytes() == before


@pytest.mark.django_db
def test_it_asks_for_the_demo_first(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("focus_exports", str(tmp_path), stdout=StringIO())
