"""`generate_invoices --month YYYY-MM [--tenant SLUG] [--finalize]`."""

from __future__ import annotations

import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing import months
from billing.models import Invoice, InvoiceStatus
from tests.billing.helpers import LAST_MONTH, THIS_MONTH, at, send
from tests.conftest import World, event

MONTH = months.label(LAST_MONTH)


def run(*args: str) -> str:
    out = StringIO()
    call_command("generate_invoices", *args, stdout=out)
    return out.getvalue()


def test_it_generates_every_tenants_drafts_with_progress(world: World) -> None:
    send(world.ingest.key, event(1, timestamp=at(LAST_MONTH)), event(2, timestamp=at(LAST_MONTH)))
    send(world.other_ingest.key, event(1, timestamp=at(LAST_MONTH)))
    output = run("--month", MONTH)
    assert f"[1/2] acme {MONTH} ..." in output and f"[2/2] globex {MONTH} ..." in output
    assert "search" in output and "created" in output and "$0.02" in output
    assert "acme: 1 invoice(s), total $0.02 (1 new, 0 regenerated" in output
    assert (
        output.strip().splitlines()[-1].startswith(f"done: 2 tenant(s), 2 invoice(s) for {MONTH}")
    )
    again = run("--month", MONTH, "--tenant", "acme")
    assert "(0 new, 1 regenerated, 0 finalized unchanged" in again and "globex" not in again


def test_it_finalizes_with_finalize_and_then_keeps_them(world: World) -> None:
    send(world.ingest.key, event(1, timestamp=at(LAST_MONTH)))
    output = run("--month", MONTH, "--tenant", "acme", "--finalize")
    assert "1 finalized now" in output
    assert Invoice.objects.for_tenant(world.tenant).get().status == InvoiceStatus.FINALIZED
    assert "(0 new, 0 regenerated, 1 finalized unchanged" in run("--month", MONTH)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2026-13"], "--month: a month must be YYYY-MM (e.g. 2026-10), got '2026-13'"),
        (["--month", "last"], "--month: a month must be YYYY-MM"),
        (["--month", MONTH, "--tenant", "nope"], "tenant 'nope' does not exist"),
        (
            ["--month", months.label(months.next_month(THIS_MONTH))],
            "has not started yet in UTC",
        ),
        (["--month", months.label(THIS_MONTH), "--finalize"], "acme: " + months.label(THIS_MONTH)),
    ],
)
def test_it_refuses_bad_input_with_a_clear_message(
    world: World, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(*args)
    assert not Invoice.unscoped_all_tenants.exists()


def test_it_exits_non_zero_from_the_shell(world: World) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "generate_invoices", "--month", "2026-1"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode != 0
    assert "a month must be YYYY-MM (e.g. 2026-10), got '2026-1'" in done.stderr
