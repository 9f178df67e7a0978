"""Reads for chargeback and invoices: rollups (never raw events) and stored invoices.

Every function takes the tenant first and reads through `for_tenant`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, QuerySet, Sum

from billing import month_reads, months
from billing.lines import BASE_TYPE, COUNTS, ByTeam, Key, LineDraft, allocate, usage_line
from billing.models import BillingSettings, Invoice, InvoiceLine, InvoiceStatus, LineType
from billing.money import ZERO
from core.teams import NO_TEAM, UNALLOCATED
from rollups.models import ALL_ENVIRONMENTS, LINE_SLICE, DailySlice, HourlySlice
from tenants.labels import TeamLabels
from tenants.models import Team, Tenant

GROUP = ("team_pk", "provider", "model", "feature")
FILTERABLE = ("environment", "feature", "model")
MEASURES = (*COUNTS, "cost_usd")
# Month-wide reads: whole UTC days, then edge hours, of the slices that keep an invoice line's
# grouping (`GROUP`), per environment and over all of them: a month of them is a fraction of
# the full rollups' rows, which also keep endpoint and status class.
SLICES = (DailySlice, HourlySlice)


def billing_settings(tenant: Tenant) -> BillingSettings:
    """The tenant's settings row (defaults until someone changes them)."""
    found = BillingSettings.objects.for_tenant(tenant).first()
    return found or BillingSettings(tenant=tenant)


@dataclass(frozen=True)
class Basis:
    """How a month is billed: its time zone and whether unallocated spend is shared out."""

    timezone: str
    allocate: bool


def basis(tenant: Tenant, month: date) -> Basis:
    """A month with finalized invoices keeps the basis it was billed on; others use today's."""
    sent = (
        Invoice.objects.for_tenant(tenant)
        .filter(month=month, status=InvoiceStatus.FINALIZED)
        .values("timezone", "allocates_unallocated")
        .first()
    )
    if sent:
        return Basis(sent["timezone"], sent["allocates_unallocated"])
    return Basis(tenant.timezone, billing_settings(tenant).allocate_unallocated)


def month_usage(
    tenant: Tenant, month: date, tz_name: str, filters: Mapping[str, str] | None = None
) -> ByTeam:
    """Usage lines per team for the month: one per provider, model and feature."""
    out: ByTeam = {}
    for row in line_sums(tenant, months.window(month, tz_name), filters):
        out.setdefault(row["team_pk"], []).append(usage_line(month, row))
    return out


def line_sums(
    tenant: Tenant, window: tuple[datetime, datetime], filters: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """`MEASURES` per invoice line (`GROUP`) over `window`, under `filters`."""
    return month_reads.summed(tenant, SLICES, window, GROUP, MEASURES, _lines(filters))


def _lines(filters: Mapping[str, str] | None) -> dict[str, str]:
    """The invoice-line slice's rows under `filters`: one environment's, or all of them summed."""
    rest = dict(filters or {})
    environment = rest.pop("environment", "") or ALL_ENVIRONMENTS
    return {**rest, "grouping": LINE_SLICE, "environment": environment}


def month_lines(
    tenant: Tenant, month: date, at: Basis, filters: Mapping[str, str] | None = None
) -> ByTeam:
    """The month's billable lines per team, as an invoice generated now would have them."""
    usage = month_usage(tenant, month, at.timezone, filters)
    return allocate(usage) if at.allocate else usage


def closed_months(tenant: Tenant, before: date) -> list[date]:
    """Months before `before` with a finalized invoice: late usage for them is adjusted."""
    rows = Invoice.objects.for_tenant(tenant).filter(
        month__lt=before, status=InvoiceStatus.FINALIZED
    )
    return sorted(set(rows.values_list("month", flat=True)))


def invoice_statuses(tenant: Tenant, month: date) -> dict[int, str]:
    rows = Invoice.objects.for_tenant(tenant).filter(month=month)
    return dict(rows.values_list("team_pk", "status"))


def billed(tenant: Tenant, month: date, exclude: list[int]) -> dict[int, dict[Key, LineDraft]]:
    """Per team and line key: everything billed so far for `month`, on any invoice but these."""
    rows = (
        InvoiceLine.objects.for_tenant(tenant)
        .filter(usage_month=month)
        .exclude(invoice_id__in=exclude)
        .values("invoice__team_pk", "line_type", "provider", "model", "feature")
        .annotate(**{f"s_{n}": Sum(n) for n in (*COUNTS, "cost_usd", "amount_usd")})
        .order_by()
    )
    out: dict[int, dict[Key, LineDraft]] = {}
    for row in rows:
        line = _billed_line(month, row)
        team = out.setdefault(row["invoice__team_pk"], {})
        team[line.key] = _add(team[line.key], line) if line.key in team else line
    return out


def _billed_line(month: date, row: dict[str, Any]) -> LineDraft:
    return LineDraft(
        line_type=BASE_TYPE[LineType(row["line_type"])],
        usage_month=month,
        provider=row["provider"],
        model=row["model"],
        feature=row["feature"],
        cost_usd=row["s_cost_usd"] or ZERO,
        amount_usd=row["s_amount_usd"] or ZERO,
        **{name: row[f"s_{name}"] or 0 for name in COUNTS},
    )


def _add(a: LineDraft, b: LineDraft) -> LineDraft:
    sums = {name: getattr(a, name) + getattr(b, name) for name in COUNTS}
    return LineDraft(
        a.line_type,
        a.usage_month,
        a.provider,
        a.model,
        a.feature,
        cost_usd=a.cost_usd + b.cost_usd,
        amount_usd=a.amount_usd + b.amount_usd,
        **sums,
    )


# Invoices ------------------------------------------------------------------------------


def invoices_of_month(tenant: Tenant, month: date) -> list[Invoice]:
    rows = Invoice.objects.for_tenant(tenant).filter(month=month)
    return list(rows.select_related("finalized_by").order_by("team_slug"))


def invoice_lines(tenant: Tenant, invoice: Invoice) -> QuerySet[InvoiceLine]:
    return InvoiceLine.objects.for_tenant(tenant).filter(invoice=invoice).order_by("position")


@dataclass(frozen=True)
class MonthSummary:
    month: date
    invoices: int
    drafts: int
    total: Decimal


def month_summaries(tenant: Tenant, limit: int = 24) -> list[MonthSummary]:
    """Per month with invoices: how many, how many still drafts, and the month's total."""
    rows = (
        Invoice.objects.for_tenant(tenant)
        .values("month")
        .annotate(
            n=Count("id"),
            drafts=Count("id", filter=Q(status=InvoiceStatus.DRAFT)),
            total=Sum("total_usd"),
        )
        .order_by("-month")[:limit]
    )
    return [MonthSummary(r["month"], r["n"], r["drafts"], r["total"] or ZERO) for r in rows]


def latest_invoiced_month(tenant: Tenant) -> date | None:
    row = Invoice.objects.for_tenant(tenant).order_by("-month").values("month").first()
    return row["month"] if row else None


# Chargeback ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Spend:
    key: str
    label: str
    amount: Decimal
    requests: int
    tokens: int
    share: float
    change: float | None  # against the previous month; None when it had no spend
    allocated: Decimal = ZERO
    team_pk: int | None = None  # on team rows: whose spend it is (see tenants.labels)
    team: Team | None = None  # on team rows: the team, when it still exists
    cost_center: str = ""  # on team rows: the team's cost center


@dataclass(frozen=True)
class Chargeback:
    month: date
    basis: Basis
    total: Decimal
    previous_total: Decimal
    teams: list[Spend]
    cost_centers: list[Spend]
    models: list[Spend]
    features: list[Spend]
    unallocated: Decimal  # spend no team owns (before any allocation)
    allocated: Decimal  # of which shared out to teams
    team: Spend | None = None  # the team drilled into
    unpriced: dict[str, int] = field(default_factory=dict)  # provider/model -> calls at $0

    @property
    def change(self) -> float | None:
        return _change(self.total, self.previous_total)


def chargeback(
    tenant: Tenant,
    month: date,
    team_slug: str = "",
    filters: Mapping[str, str] | None = None,
    teams: TeamLabels | None = None,
) -> Chargeback:
    """Spend per team, cost center, model and feature, with change against the month before.

    Amounts are the invoice amounts (cents per line), so the page agrees with the invoices.
    `team_slug` drills into one team: any label of `tenants.labels` (a team's slug,
    "(unallocated)", a deleted team's label).
    """
    at = basis(tenant, month)
    teams = teams or TeamLabels.of(tenant)
    usage = month_usage(tenant, month, at.timezone, filters)
    now = allocate(usage) if at.allocate else usage
    before = month_lines(tenant, months.previous_month(month), at, filters)
    unallocated = _amount(usage.get(NO_TEAM, []))
    drilled = _drilled(teams, team_slug)
    scope = [pk for pk in now if drilled is None or pk == drilled]
    lines = [line for pk in scope for line in now[pk]]
    previous = [line for pk in before if drilled is None or pk == drilled for line in before[pk]]
    team_rows = _team_rows(teams, now, before)
    return Chargeback(
        month=month,
        basis=at,
        total=_amount(lines),
        previous_total=_amount(previous),
        teams=team_rows,
        cost_centers=_cost_center_rows(team_rows, before, teams),
        models=_rows(lines, previous, lambda x: f"{x.provider}/{x.model}"),
        features=_rows(lines, previous, lambda x: x.feature or "(none)"),
        unallocated=unallocated,
        allocated=unallocated if NO_TEAM not in now else ZERO,
        team=next((r for r in team_rows if drilled is not None and r.key == team_slug), None),
        unpriced=_unpriced(lines),
    )


def _unpriced(lines: list[LineDraft]) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in lines:
        if line.unpriced_requests and line.line_type == LineType.USAGE:
            name = f"{line.provider}/{line.model}"
            out[name] = out.get(name, 0) + line.unpriced_requests
    return dict(sorted(out.items(), key=lambda item: -item[1]))


def _drilled(teams: TeamLabels, label: str) -> int | None:
    """The team_pk drilled into; None for the whole tenant, -1 (no rows) for an unknown label."""
    if not label:
        return None
    found = teams.pk(label)
    return found if found is not None else -1


def _amount(lines: list[LineDraft]) -> Decimal:
    return sum((line.amount_usd for line in lines), ZERO)


def _change(now: Decimal, before: Decimal) -> float | None:
    return float((now - before) / before) if before else None


def _team_rows(teams: TeamLabels, now: ByTeam, before: ByTeam) -> list[Spend]:
    total = sum((_amount(lines) for lines in now.values()), ZERO)
    rows = []
    for pk, lines in now.items():
        amount = _amount(lines)
        rows.append(
            Spend(
                key=teams.label(pk),
                label=teams.name(pk),
                amount=amount,
                requests=sum(x.requests for x in lines if x.line_type == LineType.USAGE),
                tokens=sum(x.tokens for x in lines if x.line_type == LineType.USAGE),
                share=float(amount / total) if total else 0.0,
                change=_change(amount, _amount(before.get(pk, []))),
                allocated=_amount([x for x in lines if x.line_type == LineType.ALLOCATION]),
                team_pk=pk,
                team=teams.team(pk),
                cost_center=teams.cost_center(pk),
            )
        )
    return sorted(rows, key=lambda r: (-r.amount, r.key))


def _cost_center(teams: TeamLabels, pk: int) -> str:
    """The cost center a team's spend is grouped under: unallocated spend keeps its label; a
    team without one, or deleted (its cost center is gone with it), counts under "(none)"."""
    if pk == NO_TEAM:
        return UNALLOCATED
    return teams.cost_center(pk) or "(none)"


def _cost_center_rows(team_rows: list[Spend], before: ByTeam, teams: TeamLabels) -> list[Spend]:
    previous: dict[str, Decimal] = {}
    for pk, lines in before.items():
        center = _cost_center(teams, pk)
        previous[center] = previous.get(center, ZERO) + _amount(lines)
    grouped: dict[str, list[Spend]] = {}
    for row in team_rows:
        grouped.setdefault(_cost_center(teams, row.team_pk or NO_TEAM), []).append(row)
    total = sum((r.amount for r in team_rows), ZERO)
    return sorted(
        (_merge(name, rows, total, previous.get(name, ZERO)) for name, rows in grouped.items()),
        key=lambda r: (-r.amount, r.key),
    )


def _merge(name: str, rows: list[Spend], total: Decimal, before: Decimal) -> Spend:
    amount = sum((r.amount for r in rows), ZERO)
    return Spend(
        key=name,
        label=", ".join(r.key for r in rows),
        amount=amount,
        requests=sum(r.requests for r in rows),
        tokens=sum(r.tokens for r in rows),
        share=float(amount / total) if total else 0.0,
        change=_change(amount, before),
        allocated=sum((r.allocated for r in rows), ZERO),
    )


def _rows(lines: list[LineDraft], previous: list[LineDraft], name: Any) -> list[Spend]:
    """Lines grouped by `name(line)`, largest first, with share and change."""
    now = _group(lines, name)
    before = _group(previous, name)
    total = _amount(lines)
    rows = [
        Spend(
            key=k,
            label=k,
            amount=_amount(group),
            requests=sum(x.requests for x in group if x.line_type == LineType.USAGE),
            tokens=sum(x.tokens for x in group if x.line_type == LineType.USAGE),
            share=float(_amount(group) / total) if total else 0.0,
            change=_change(_amount(group), _amount(before.get(k, []))),
        )
        for k, group in now.items()
    ]
    return sorted(rows, key=lambda r: (-r.amount, r.key))


def _group(lines: list[LineDraft], name: Any) -> dict[str, list[LineDraft]]:
    out: dict[str, list[LineDraft]] = {}
    for line in lines:
        out.setdefault(name(line), []).append(line)
    return out


def filter_choices(tenant: Tenant, month: date, tz_name: str) -> dict[str, list[str]]:
    """Environments, features and models used in the month, for the filter bar."""
    window = months.window(month, tz_name)
    # Environments from the one-row-per-environment-and-day slice, the rest from the lines'.
    rows_of = {name: _lines(None) for name in FILTERABLE} | {"environment": {"grouping": "all"}}
    return {
        name: sorted(v for v in month_reads.distinct(tenant, SLICES, window, name, rows) if v)
        for name, rows in rows_of.items()
    }
