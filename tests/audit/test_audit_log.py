"""The audit log: one entry per change with who made it, shown to admins only, filtered,
downloaded as spreadsheet-safe CSV, and never changed or deleted once written."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db.utils import InternalError, ProgrammingError
from django.test import Client
from django.utils import timezone

from alerts.models import AlertChannel
from anomalies.models import Anomaly
from anomalies.services import detect
from audit.models import AppendOnlyError, AuditEntry
from billing.models import Invoice
from prices.services import request_reprice
from pricing.models import PriceOverride
from tenants.models import Membership, Tenant
from tests.anomalies.test_anomalies import spiked  # noqa: F401  (fixture)
from tests.anomalies.test_detection import MONDAY_10
from tests.billing.test_pages import MONTH, _usage
from tests.conftest import PASSWORD, World, login

DB_REFUSALS = (InternalError, ProgrammingError)


def _log(tenant: Tenant) -> list[tuple[str, str, str]]:
    rows = AuditEntry.objects.for_tenant(tenant).order_by("id")
    return [(e.actor_label, e.action, e.target) for e in rows]


def _new(tenant: Tenant, before: int) -> list[tuple[str, str, str]]:
    return _log(tenant)[before:]


def _csv(response: object) -> list[dict[str, str]]:
    data = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    return list(csv.DictReader(io.StringIO(data)))


def test_it_records_keys_prices_and_channels_changed_on_the_settings_page(world: World) -> None:
    start = len(_log(world.tenant))
    client = login("owner")
    page = client.post(
        "/settings/", {"action": "create_key", "name": "svc", "scope": "read"}
    ).content.decode()
    prefix = re.search(r"<code>cb_([0-9a-f]{10})_", page)
    assert prefix
    key = f"cb_{prefix.group(1)}"
    client.post("/settings/", {"action": "revoke_key", "id": world.ingest.key.pk})
    price = {
        "action": "add_price",
        "provider": "openai",
        "model": "gpt-x",
        "effective_from": "2026-01-01T00:00",
        "input_per_mtok": "1.5",
        "output_per_mtok": "2",
    }
    assert client.post("/prices/", price).status_code == 302
    override = PriceOverride.objects.for_tenant(world.tenant).get()
    end = {"action": "end_price", "id": override.pk, "ended_at": "2026-02-01 00:00"}
    assert client.post("/prices/", end).status_code == 302
    client.post("/prices/", {"action": "delete_price", "id": override.pk})
    channel = {"action": "add_channel", "name": "ops", "kind": "email", "target": "o@example.com"}
    assert client.post("/settings/", channel).status_code == 302
    ops = AlertChannel.objects.for_tenant(world.tenant).get()
    client.post("/settings/", {"action": "delete_channel", "id": ops.pk})
    price_target = "openai/gpt-x from 2026-01-01T00:00:00+00:00"
    assert _new(world.tenant, start) == [
        ("owner", "api_key.created", key),
        ("owner", "api_key.revoked", f"cb_{world.ingest.key.prefix}"),
        ("owner", "price.set", price_target),
        ("owner", "price.ended", price_target),
        ("owner", "price.deleted", price_target),
        ("owner", "channel.created", "ops"),
        ("owner", "channel.deleted", "ops"),
    ]
    entry = AuditEntry.objects.for_tenant(world.tenant).get(action="price.set")
    assert entry.details["input_per_mtok"] == "1.5" and entry.details["output_per_mtok"] == "2"
    assert entry.actor is not None and entry.actor.get_username() == "owner"
    # Nothing of it lands in the other tenant's log.
    assert all(actor != "owner" for actor, _, _ in _log(world.other_tenant))


def test_it_records_what_the_commands_and_a_re_price_change(world: World) -> None:
    start = len(_log(world.tenant))
    call_command(
        "set_price", "acme", "openai", "gpt-y", "--input", "1", "--output", "2",
        "--from", "2026-01-01", stdout=io.StringIO(),
    )  # fmt: skip
    call_command("revoke_api_key", "acme", world.read.key.prefix, stdout=io.StringIO())
    call_command(
        "add_channel", "acme", "pager", "--kind", "email", "--target", "p@example.com",
        stdout=io.StringIO(),
    )  # fmt: skip
    owner = get_user_model().objects.get(username="owner")
    world.tenant.refresh_from_db()
    run = request_reprice(world.tenant, timezone.now().date(), world.tenant.pricing_version, owner)
    assert _new(world.tenant, start) == [
        ("manage.py", "price.set", "openai/gpt-y from 2026-01-01T00:00:00+00:00"),
        ("manage.py", "api_key.revoked", f"cb_{world.read.key.prefix}"),
        ("manage.py", "channel.created", "pager"),
        ("owner", "price.repriced", f"from {timezone.now().date().isoformat()}"),
    ]
    assert AuditEntry.objects.for_tenant(world.tenant).get(action="price.repriced").details == {
        "run": run.pk
    }


def test_it_records_budgets_created_changed_and_deleted(world: World) -> None:
    start = len(_log(world.tenant))
    client = login("owner")
    form = {
        "name": "Chat cap",
        "scope": "feature",
        "feature": "chat",
        "period": "day",
        "amount_usd": "3",
        "thresholds": "50, 100",
    }
    assert client.post("/budgets/new/", form).status_code == 302
    budget = AuditEntry.objects.for_tenant(world.tenant).get(action="budget.created")
    assert budget.details == {"amount_usd": "3", "period": "day"}
    pk = int(re.findall(r"/budgets/(\d+)/", client.get("/budgets/").content.decode())[0])
    assert client.post(f"/budgets/{pk}/", {**form, "amount_usd": "4"}).status_code == 302
    assert client.post(f"/budgets/{pk}/delete/").status_code == 302
    assert _new(world.tenant, start) == [
        ("owner", "budget.created", "Chat cap"),
        ("owner", "budget.changed", "Chat cap"),
        ("owner", "budget.deleted", "Chat cap"),
    ]
    call_command("set_budget", "acme", "--amount", "7", "--team", "search", stdout=io.StringIO())
    assert _log(world.tenant)[-1][:2] == ("manage.py", "budget.created")


def test_it_records_members_invited_re_roled_removed_and_added(world: World) -> None:
    start = len(_log(world.tenant))
    client = login("owner")
    client.post("/settings/members/", {"action": "invite", "email": "Dana@x.io", "role": "viewer"})
    dana = Membership.objects.for_tenant(world.tenant).get(user__username="dana@x.io")
    client.post("/settings/members/", {"action": "change_role", "id": dana.pk, "role": "finance"})
    client.post("/settings/members/", {"action": "remove", "id": dana.pk})
    call_command("add_member", "acme", "erin", "--role", "viewer", stdout=io.StringIO())
    assert _new(world.tenant, start) == [
        ("owner", "member.invited", "dana@x.io"),
        ("owner", "member.role_changed", "dana@x.io"),
        ("owner", "member.removed", "dana@x.io"),
        ("manage.py", "member.added", "erin"),
    ]
    changed = AuditEntry.objects.for_tenant(world.tenant).get(action="member.role_changed")
    assert changed.details == {"from": "viewer", "to": "finance"}


def test_it_records_a_lockout_and_its_unlock_in_the_users_tenants_only(world: World) -> None:
    start, other_start = len(_log(world.tenant)), len(_log(world.other_tenant))
    for _ in range(5):
        Client().post(
            "/accounts/login/", {"username": "member", "password": "wrong"}, REMOTE_ADDR="10.0.0.9"
        )
    for _ in range(5):  # a username nobody has belongs to no tenant: nothing to log
        Client().post(
            "/accounts/login/", {"username": "ghost", "password": "wrong"}, REMOTE_ADDR="10.0.0.8"
        )
    login("owner").post("/settings/members/", {"action": "unlock", "id": _member_id(world)})
    assert _new(world.tenant, start) == [
        ("system", "login.locked_out", "member"),
        ("owner", "login.unlocked", "member"),
    ]
    locked = AuditEntry.objects.for_tenant(world.tenant).get(action="login.locked_out")
    assert locked.details == {"address": "10.0.0.9"}
    assert len(_log(world.other_tenant)) == other_start
    # Unlocking someone who is not locked out changes nothing, so logs nothing.
    call_command("unlock", "member", stdout=io.StringIO())
    assert len(_log(world.tenant)) == start + 2


def _member_id(world: World) -> int:
    return Membership.objects.for_tenant(world.tenant).get(user__username="member").pk


def test_it_records_invoice_generation_and_finalization(world: World) -> None:
    _usage(world)
    start = len(_log(world.tenant))
    client = login("finance")
    client.post("/invoices/generate/", {"month": MONTH})
    invoice = Invoice.objects.for_tenant(world.tenant).order_by("team_slug").first()
    assert invoice is not None
    client.post(f"/invoices/{invoice.pk}/finalize/")
    client.post(f"/invoices/{invoice.pk}/finalize/")  # already final: no second entry
    new = _new(world.tenant, start)
    assert new == [
        ("finance", "invoice.generated", MONTH),
        ("finance", "invoice.finalized", invoice.number),
    ]
    generated = AuditEntry.objects.for_tenant(world.tenant).get(action="invoice.generated")
    assert generated.details == {"created": 3, "regenerated": 0, "kept": 0, "total_usd": "0.05"}


def test_it_records_an_anomaly_acknowledgement_once(spiked: World) -> None:  # noqa: F811
    detect(spiked.tenant, MONDAY_10, MONDAY_10 + timedelta(hours=1))
    anomaly = Anomaly.objects.for_tenant(spiked.tenant).get()
    start = len(_log(spiked.tenant))
    client = login("owner")
    client.post(f"/anomalies/{anomaly.pk}/acknowledge/")
    client.post(f"/anomalies/{anomaly.pk}/acknowledge/")
    assert _new(spiked.tenant, start) == [
        ("owner", "anomaly.acknowledged", f"#{anomaly.pk} {anomaly.feature}")
    ]


@pytest.mark.parametrize("username", ["finance", "member"])
def test_it_refuses_the_page_and_csv_below_admin(world: World, username: str) -> None:
    client = login(username)
    assert client.get("/settings/audit/").status_code == 403
    assert client.get("/settings/audit.csv").status_code == 403


def test_it_answers_404_to_someone_in_no_tenant(world: World) -> None:
    get_user_model().objects.create_user("drifter", password=PASSWORD)
    client = login("drifter")
    assert client.get("/settings/audit/").status_code == 404
    assert client.get("/settings/audit.csv").status_code == 404


def test_it_sends_the_signed_out_to_sign_in(world: World) -> None:
    assert Client().get("/settings/audit/").status_code == 302
    assert Client().get("/settings/audit.csv").status_code == 302


def test_it_shows_an_admin_only_their_own_tenants_entries(world: World) -> None:
    login("owner").post("/settings/", {"action": "revoke_key", "id": world.read.key.pk})
    login("outsider").post("/settings/", {"action": "revoke_key", "id": world.other_read.key.pk})
    mine = login("owner").get("/settings/audit/").content.decode()
    theirs = login("outsider").get("/settings/audit/").content.decode()
    assert f"cb_{world.read.key.prefix}" in mine and f"cb_{world.other_read.key.prefix}" not in mine
    assert f"cb_{world.other_read.key.prefix}" in theirs
    assert f"cb_{world.read.key.prefix}" not in theirs
    rows = _csv(login("outsider").get("/settings/audit.csv"))
    assert {r["actor"] for r in rows} <= {"outsider", "system"}
    assert all(world.read.key.prefix not in r["target"] for r in rows)


def test_it_offers_no_way_to_edit_or_delete_an_entry(world: World) -> None:
    client = login("owner")
    client.post("/settings/", {"action": "revoke_key", "id": world.read.key.pk})
    page = client.get("/settings/audit/").content.decode()
    table = page[page.index('data-testid="audit"') :]
    assert f"cb_{world.read.key.prefix}" in table and "<form" not in table.split("</table>")[0]
    assert client.post("/settings/audit/", {"id": 1}).status_code == 405
    assert client.delete("/settings/audit/").status_code == 405
    assert client.post("/settings/audit.csv").status_code == 405


def test_it_filters_by_action_actor_and_days(world: World) -> None:
    client = login("owner")
    client.post("/settings/", {"action": "revoke_key", "id": world.read.key.pk})
    call_command("add_member", "acme", "erin", "--role", "viewer", stdout=io.StringIO())
    revoked = client.get("/settings/audit/?action=api_key.revoked").content.decode()
    assert f"cb_{world.read.key.prefix}" in revoked and "erin" not in revoked
    by_actor = client.get("/settings/audit/?actor=MANAGE").content.decode()
    assert "erin" in by_actor and f"cb_{world.read.key.prefix}" not in by_actor
    today = timezone.now().date()
    assert "erin" in client.get(f"/settings/audit/?start={today}&end={today}").content.decode()
    tomorrow = today + timedelta(days=1)
    assert "erin" not in client.get(f"/settings/audit/?start={tomorrow}").content.decode()
    rows = _csv(client.get("/settings/audit.csv?action=member.added&actor=manage"))
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [
        ("manage.py", "member.added", "erin")
    ]


def test_it_names_the_field_of_a_bad_filter_instead_of_failing(world: World) -> None:
    client = login("owner")
    page = client.get("/settings/audit/?start=yesterday&action=drop.table")
    assert page.status_code == 200
    text = page.content.decode()
    assert "From: Enter a valid date." in text and "Action: Select a valid choice" in text
    backwards = client.get("/settings/audit/?start=2026-02-02&end=2026-02-01").content.decode()
    assert "To: The end is before the start." in backwards
    download = client.get("/settings/audit.csv?end=0000-01-01")
    assert download.status_code == 400 and b"end: " in download.content
    assert client.get("/settings/audit/?page=999999").status_code == 200


def test_it_neutralises_formulas_in_the_csv(world: World) -> None:
    client = login("owner")
    for name in ("=HYPERLINK(1)", "+1", "-2", "@SUM(1)"):
        client.post(
            "/settings/",
            {"action": "add_channel", "name": name, "kind": "email", "target": "a@b.c"},
        )
    rows = _csv(client.get("/settings/audit.csv?action=channel.created"))
    assert sorted(r["target"] for r in rows) == ["'+1", "'-2", "'=HYPERLINK(1)", "'@SUM(1)"]


def test_it_refuses_to_change_or_delete_an_entry_in_the_database(world: World) -> None:
    entry = AuditEntry.objects.for_tenant(world.tenant).first()
    assert entry is not None
    for statement in (
        "UPDATE audit_auditentry SET actor_label = 'someone else' WHERE id = %s",
        "DELETE FROM audit_auditentry WHERE id = %s",
    ):
        with (
            pytest.raises(DB_REFUSALS, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [entry.pk])
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.for_tenant(world.tenant).update(actor_label="x")
    with pytest.raises(AppendOnlyError):
        AuditEntry.objects.for_tenant(world.tenant).delete()
    entry.refresh_from_db()
    assert entry.actor_label == "system"


def test_it_erases_a_tenants_log_only_with_the_tenant(world: World) -> None:
    kept = len(_log(world.tenant))
    assert kept > 0
    doomed = world.other_tenant
    doomed_id = doomed.pk
    for key in (world.other_ingest.key, world.other_read.key):
        key.delete()  # keys are PROTECTed; the demo deletes them first the same way
    doomed.delete()
    assert AuditEntry.objects.for_tenant(doomed_id).count() == 0
    assert len(_log(world.tenant)) == kept
    assert login("owner").get("/settings/audit/").status_code == 200
