"""A team shows under one label everywhere: pages, usage API, chargeback, CSVs, FOCUS, /metrics.

The tenant has a team (search), spend no team owns, and a team deleted after its usage was
rolled up (support); the other tenant has a team of its own (ops). Every reader is read
through its real endpoint, and each must name these three exactly as `tenants.labels` does.
"""

from __future__ import annotations

import ast
import html
import json
import re
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, unquote_plus

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from billing import months
from billing.models import Invoice
from core.teams import NO_TEAM, UNALLOCATED
from tenants.labels import TeamLabels, deleted_team_label
from tenants.services import create_api_key, create_team
from tests.billing.helpers import GPT4O, LAST_MONTH, at, download, rows_of, send
from tests.conftest import World, event, login
from tests.metrics.helpers import parse, pick, scrape

MONTH = months.label(LAST_MONTH)
ROOT = Path(__file__).resolve().parents[2]
TOKEN = "labels-metrics-token"


def _seed(world: World) -> dict[str, Decimal]:
    """Usage of last month; then `support` is deleted. The exact spend per expected label."""
    support = create_team(world.tenant, "support", "Support", "CC-2")
    ops = create_team(world.other_tenant, "ops", "Globex Ops", "G-2")
    shared = create_api_key(world.tenant, name="shared")[0]
    when = at(LAST_MONTH)
    send(world.ingest.key, *(event(f"s{n}", timestamp=when) for n in range(4)))
    send(shared, *(event(f"p{n}", timestamp=when, team="support") for n in range(2)))
    send(shared, event("u1", timestamp=when))
    send(world.other_ingest.key, event("g1", timestamp=when, team="ops"))
    gone = support.pk
    support.delete()  # after its usage was rolled up: the rollups keep its team_pk
    assert ops.pk != gone
    return {
        "search": 4 * GPT4O,
        deleted_team_label(gone): 2 * GPT4O,
        UNALLOCATED: GPT4O,
    }


# Reading the readers ----------------------------------------------------------------------


def _text(cell: str) -> str:
    """A cell's text, without the note beside a team's label (its name)."""
    cell = re.sub(r'<small class="note">.*?</small>', "", cell, flags=re.S)
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", cell).split()))


def _first_cells(page: str, start: str) -> list[str]:
    """The first cell of each body row of the table that `start` (a regex) opens."""
    match = re.search(start + r".*?<tbody>(.*?)</tbody>", page, re.S)
    assert match is not None, start
    rows = re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)
    return [_text(re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[0]) for row in rows]


def _figure_names(page: str, figure: str) -> set[str]:
    match = re.search(rf'<script id="{figure}" type="application/json">(.*?)</script>', page, re.S)
    assert match is not None, figure
    return {html.unescape(trace["name"]) for trace in json.loads(match.group(1))["data"]}


def _get(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def _overview(client: Client) -> dict[str, set[str]]:
    page = _get(client, "/?range=last_month&stack=team")
    return {
        "top teams": set(_first_cells(page, r"<caption>Top teams</caption>")),
        "spend chart": _figure_names(page, "spend"),
    }


def _breakdown(client: Client) -> dict[str, set[str]]:
    page = _get(client, "/teams/?range=last_month")
    return {
        "teams table": set(_first_cells(page, r"<caption>Teams</caption>")),
        "spend chart": _figure_names(page, "spend"),
        "share chart": _y_labels(page, "share"),
    }


def _y_labels(page: str, figure: str) -> set[str]:
    match = re.search(rf'<script id="{figure}" type="application/json">(.*?)</script>', page, re.S)
    assert match is not None, figure
    return {
        html.unescape(str(y)) for trace in json.loads(match.group(1))["data"] for y in trace["y"]
    }


def _usage_api(world: World) -> dict[str, Decimal]:
    response = Client().get(
        f"/api/v1/usage?from={LAST_MONTH.isoformat()}&to={months.next_month(LAST_MONTH)}"
        "&group_by=team&granularity=month",
        **world.read.auth,
    )
    assert response.status_code == 200, response.content
    out: dict[str, Decimal] = defaultdict(Decimal)
    for row in response.json()["rows"]:
        out[row["team"]] += Decimal(row["cost_usd"])
    return dict(out)


def _chargeback(client: Client) -> dict[str, set[str]]:
    page = _get(client, f"/chargeback/?month={MONTH}")
    links = re.findall(r'<a href="\?[^"]*&amp;team=([^"]*)">', page)
    return {
        "teams table": set(_first_cells(page, r'data-testid="teams">')),
        "drill-down links": {_unquote(link) for link in links},
        "chart": _y_labels(page, "by_team"),
    }


def _unquote(value: str) -> str:
    return unquote_plus(html.unescape(value))


def _invoices(world: World, client: Client) -> dict[str, set[str]]:
    response = client.post("/invoices/generate/", {"month": MONTH})
    assert response.status_code == 302
    found: dict[str, set[str]] = {"invoice CSVs": set()}
    for invoice in Invoice.objects.for_tenant(world.tenant):
        rows = rows_of(download(client, f"/invoices/{invoice.pk}/csv/"))
        found["invoice CSVs"] |= {r["team"] for r in rows}
    month = rows_of(download(client, f"/invoices/month/{MONTH}/csv/"))
    found["month CSV"] = {r["team"] for r in month if r["line_type"] != "total"}
    focus = rows_of(download(client, f"/invoices/month/{MONTH}/focus/"))
    found["FOCUS SubAccountId"] = {r["SubAccountId"] for r in focus}
    found["FOCUS Tags"] = {json.loads(r["Tags"])["team"] for r in focus}
    return found


def _metrics(settings: Any, tenant: str = "acme") -> dict[str, Decimal]:
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_CACHE_SECONDS = 0
    settings.METRICS_LABELS = ["tenant", "team", "provider", "model"]
    costs = pick(parse(scrape(token=TOKEN)), "costboard_cost_usd_total", tenant=tenant)
    out: dict[str, Decimal] = defaultdict(Decimal)
    for labels, value in costs.items():
        out[dict(labels)["team"]] += Decimal(str(value))
    return dict(out)


# The tests ---------------------------------------------------------------------------------


def test_it_shows_each_team_under_one_label_on_every_page_export_and_metric(
    world: World, settings: Any
) -> None:
    spend = _seed(world)
    expected = set(spend)
    finance = login("finance")
    seen: dict[str, set[str]] = {}
    seen |= {f"overview {k}": v for k, v in _overview(login("member")).items()}
    seen |= {f"teams page {k}": v for k, v in _breakdown(login("member")).items()}
    seen["usage API"] = set(_usage_api(world))
    seen |= {f"chargeback {k}": v for k, v in _chargeback(finance).items()}
    seen |= _invoices(world, finance)
    seen["/metrics"] = set(_metrics(settings))
    assert {reader: labels for reader, labels in seen.items() if labels != expected} == {}


def test_it_reports_the_same_exact_spend_per_label_in_the_api_and_the_metrics(
    world: World, settings: Any
) -> None:
    spend = _seed(world)
    assert _usage_api(world) == spend
    assert {k: v for k, v in _metrics(settings).items()} == {
        k: Decimal(str(float(v))) for k, v in spend.items()
    }


def test_it_opens_each_label_as_a_filter_or_drill_down(world: World) -> None:
    spend = _seed(world)
    member, finance = login("member"), login("finance")
    for label in spend:
        query = f"range=last_month&team={quote_plus(label)}"
        assert _first_cells(_get(member, f"/teams/?{query}"), r"<caption>Teams</caption>") == [
            label
        ]
        page = _get(finance, f"/chargeback/?month={MONTH}&team={quote_plus(label)}")
        total = re.search(r'data-testid="chargeback-total">\$([0-9.,]+)<', page)
        assert total is not None and Decimal(total.group(1)) == spend[label].quantize(
            Decimal("0.01")
        ), label
    assert _get(member, "/teams/search/").count("<small>search") == 1


def test_it_keeps_a_deleted_teams_spend_out_of_the_unallocated_cost_center(world: World) -> None:
    gone = next(label for label in _seed(world) if label.startswith("deleted-team-"))
    page = _get(login("finance"), f"/chargeback/?month={MONTH}")
    match = re.search(r'data-testid="cost-centers">.*?<tbody>(.*?)</tbody>', page, re.S)
    assert match is not None
    rows = re.findall(r"<tr>(.*?)</tr>", match.group(1), re.S)
    cells = [[_text(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[:3]] for row in rows]
    # cost center, its teams, amount: the deleted team's cost center is gone with it.
    assert sorted(cells) == [
        ["(none)", gone, "$0.02"],
        [UNALLOCATED, UNALLOCATED, "$0.01"],
        ["CC-1", "search", "$0.03"],
    ]


def test_it_never_shows_or_opens_another_tenants_team(world: World, settings: Any) -> None:
    _seed(world)
    member, finance = login("member"), login("finance")
    for page in (_get(member, "/?range=last_month"), _get(member, "/teams/?range=last_month")):
        assert "ops" not in _first_cells(page, r"<caption>(Top teams|Teams)</caption>")
    filtered = _get(member, "/teams/?range=last_month&team=ops")
    assert 'data-testid="spend">$0.00<' in filtered  # no spend of this tenant is ops
    assert finance.get(f"/chargeback/?month={MONTH}&team=ops").status_code == 404
    assert member.get("/teams/ops/").status_code == 404
    assert "ops" not in _usage_api(world)
    assert "ops" not in _metrics(settings) and "ops" in _metrics(settings, "globex")
    assert TeamLabels.of(world.tenant).pk("ops") is None
    assert TeamLabels.of(world.other_tenant).pk("ops") is not None


def test_it_labels_team_pks_and_reads_labels_back(world: World) -> None:
    labels = TeamLabels.of(world.tenant)
    gone = world.other_team.pk  # not a team of this tenant: reads as a deleted one
    assert labels.label(world.team.pk) == "search"
    assert labels.label(NO_TEAM) == UNALLOCATED
    assert labels.label(gone) == f"deleted-team-{gone}"
    for pk in (world.team.pk, NO_TEAM, gone):
        assert labels.pk(labels.label(pk)) == pk
    assert labels.pk(f"deleted-team-{world.team.pk}") is None  # search is not deleted
    assert labels.pk("deleted-team-0") is None and labels.pk("nobody") is None
    assert labels.slugs() == ["search"]
    every = TeamLabels.of_every_tenant()
    assert every.label(world.other_team.pk) == "search"  # globex's own search team
    with pytest.raises(ValueError, match="cannot be reversed"):
        every.pk("search")


def test_it_refuses_a_team_slug_that_names_a_deleted_team(world: World) -> None:
    with pytest.raises(CommandError, match="reserved"):
        call_command("create_team", "acme", "deleted-team-7")
    with pytest.raises(ValueError, match="reserved"):
        create_team(world.tenant, "deleted-team-7")
    create_team(world.tenant, "deleted-team")  # no number: an ordinary slug


def test_it_spells_the_team_labels_in_one_place() -> None:
    """Only core/teams.py writes "(unallocated)" and only tenants/labels.py a deleted team's
    label (docstrings may mention them); templates get the first from a template tag."""
    offenders = []
    for path in ROOT.rglob("*.py"):
        relative = str(path.relative_to(ROOT))
        if relative.split("/")[0] in {"tests", "bench", "var"} or relative.startswith("."):
            continue
        for text in _string_constants(path):
            if text == UNALLOCATED and relative != "core/teams.py":
                offenders.append(f"{relative}: {text}")
            if text.startswith("deleted-team-") and relative != "tenants/labels.py":
                offenders.append(f"{relative}: {text}")
    for path in (ROOT / "templates").rglob("*.html"):
        if UNALLOCATED in path.read_text() or "deleted-team-" in path.read_text():
            offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def _string_constants(path: Path) -> list[str]:
    """The module's string constants, an f-string's literal parts included."""
    nodes = ast.walk(ast.parse(path.read_text()))
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]
