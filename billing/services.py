"""Invoice writes: generate a month's drafts, finalize them, close months as they end.

Rules (README, "Chargeback and invoices"):
- One invoice per team per month in the tenant's time zone, plus one for unallocated spend
  unless the tenant shares that out over the teams.
- Generating again replaces a draft's lines; a finalized invoice is never written again.
- Usage that arrives after a month's invoice was finalized becomes an adjustment line on the
  team's next invoice that is generated.
- Each line is stored with its split by the tenant's chosen tag keys (`billing.tag_lines`),
  recomputed with a draft's lines and frozen with a finalized invoice.
All writes of one tenant run under a row lock on its `BillingSettings`, so the beat task, the
page and the command never interleave.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audit.models import Action
from audit.services import Actor, record
from billing import csv_export, lines, months, selectors, tag_lines
from billing.lines import ByTeam, LineDraft
from billing.models import BillingSettings, Invoice, InvoiceLine, InvoiceLineTag, InvoiceStatus
from billing.money import ZERO
from core.teams import NO_TEAM
from tenants.labels import TeamLabels
from tenants.models import Tenant

# How many missed months the beat catches up on after an outage.
CATCH_UP_MONTHS = 12
# Who asks: a user on the invoices page, "manage.py", or None for the monthly beat.
User = Actor
Progress = Callable[[str, Invoice | None, int], None]  # outcome, invoice, team pk


class BillingError(Exception):
    """Something the billing rules refuse; the message says why, for people."""


@dataclass
class GenerationResult:
    tenant: Tenant
    month: date
    created: list[Invoice] = field(default_factory=list)
    regenerated: list[Invoice] = field(default_factory=list)
    kept: list[Invoice] = field(default_factory=list)  # finalized: never touched
    finalized: list[Invoice] = field(default_factory=list)
    removed: int = 0  # drafts whose usage disappeared (e.g. re-priced to nothing)
    deferred: list[int] = field(default_factory=list)  # teams new to a closed month

    @property
    def invoices(self) -> list[Invoice]:
        return sorted([*self.created, *self.regenerated, *self.kept], key=lambda i: i.team_slug)

    @property
    def total(self) -> Decimal:
        return sum((i.total_usd for i in self.invoices), ZERO)


def lock(tenant: Tenant) -> BillingSettings:
    """The tenant's settings row, locked until the transaction ends (created on first use)."""
    BillingSettings.objects.for_tenant(tenant).get_or_create(tenant=tenant)
    return BillingSettings.objects.for_tenant(tenant).select_for_update().get()


def set_allocation(tenant: Tenant, allocate: bool) -> BillingSettings:
    with transaction.atomic():
        settings = lock(tenant)
        settings.allocate_unallocated = allocate
        settings.save(update_fields=["allocate_unallocated", "updated_at"])
    return settings


def check_month(tenant: Tenant, month: date, now: datetime, finalize: bool = False) -> None:
    """Refuse months that have not started, and finalizing a month that has not ended."""
    current = months.current_month(tenant.timezone, now)
    if month > current:
        raise BillingError(
            f"{months.label(month)} has not started yet in {tenant.timezone} "
            f"(it is {months.label(current)} there)"
        )
    if finalize and month == current:
        raise BillingError(
            f"{months.label(month)} has not ended yet in {tenant.timezone}; "
            "its invoices can be finalized once the month is over"
        )


def generate_month(
    tenant: Tenant,
    month: date,
    *,
    finalize: bool = False,
    user: User = None,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> GenerationResult:
    """Generate (or regenerate) the month's draft invoices; optionally finalize them."""
    now = now or timezone.now()
    check_month(tenant, month, now, finalize)
    with transaction.atomic():
        lock(tenant)
        result = _generate(tenant, month, now, progress)
        record(tenant, user, Action.INVOICE_GENERATED, months.label(month), _summary(result))
        if finalize:
            for invoice in [*result.created, *result.regenerated]:
                result.finalized.append(_finalize(tenant, invoice, user, now))
    return result


def _summary(result: GenerationResult) -> dict[str, int | str]:
    return {
        "created": len(result.created),
        "regenerated": len(result.regenerated),
        "kept": len(result.kept),
        "total_usd": str(result.total),
    }


@dataclass(frozen=True)
class _Run:
    """One generation of one tenant's month: what every invoice written in it shares."""

    tenant: Tenant
    month: date
    at: selectors.Basis
    teams: TeamLabels
    existing: dict[int, Invoice]
    now: datetime
    tags: tag_lines.TagReader  # the lines' breakdown by the tenant's chosen tag keys

    @property
    def closed(self) -> bool:
        # Once any invoice of a month is sent, nobody gets a new one for it: their usage of
        # that month is billed as an adjustment on their next invoice instead.
        return any(not i.is_draft for i in self.existing.values())


def _generate(
    tenant: Tenant, month: date, now: datetime, progress: Progress | None
) -> GenerationResult:
    existing = {i.team_pk: i for i in Invoice.objects.for_tenant(tenant).filter(month=month)}
    at = selectors.basis(tenant, month)
    run = _Run(
        tenant, month, at, TeamLabels.of(tenant), existing, now, tag_lines.TagReader.of(tenant)
    )
    by_team = selectors.month_lines(tenant, month, at)
    drafts = [i.pk for i in existing.values() if i.is_draft]
    for pk, extra in _adjustments(tenant, month, drafts).items():
        by_team.setdefault(pk, []).extend(extra)
    result = GenerationResult(tenant, month)
    for pk in sorted(by_team):
        outcome, invoice = _place(run, pk, by_team[pk])
        if invoice is None:
            result.deferred.append(pk)
        else:
            getattr(result, outcome).append(invoice)
        if progress:
            progress(outcome, invoice, pk)
    result.removed = _remove_empty_drafts(existing, by_team)
    return result


def _place(run: _Run, team_pk: int, drafts: list[LineDraft]) -> tuple[str, Invoice | None]:
    """Write one team's lines to its draft; says what happened ("deferred": not written)."""
    invoice = run.existing.get(team_pk)
    if invoice is not None and not invoice.is_draft:
        return "kept", invoice
    if invoice is None and run.closed:
        return "deferred", None
    outcome = "regenerated" if invoice is not None else "created"
    invoice = invoice or Invoice(tenant=run.tenant, month=run.month, team_pk=team_pk)
    return outcome, _write(run, invoice, drafts)


def _adjustments(tenant: Tenant, month: date, exclude: list[int]) -> ByTeam:
    """Late usage of every earlier month that has finalized invoices, per team.

    `exclude`: the drafts being regenerated, whose old lines no longer count as billed.
    A team whose invoice for that month is still a draft is skipped: the draft will bill it.
    """
    out: ByTeam = {}
    for earlier in selectors.closed_months(tenant, before=month):
        statuses = selectors.invoice_statuses(tenant, earlier)
        now = selectors.month_lines(tenant, earlier, selectors.basis(tenant, earlier))
        before = selectors.billed(tenant, earlier, exclude)
        for pk in sorted(now.keys() | before.keys()):
            if statuses.get(pk) == InvoiceStatus.DRAFT:
                continue
            if extra := lines.adjustments(earlier, now.get(pk, []), before.get(pk, {})):
                out.setdefault(pk, []).extend(extra)
    return out


def _snapshot(teams: TeamLabels, team_pk: int) -> tuple[str, str, str]:
    """Label, name and cost center of the invoice's team, as they are now (the pages' label:
    the team's slug, "(unallocated)", or a deleted team's label)."""
    return teams.label(team_pk), teams.name(team_pk), teams.cost_center(team_pk)


def _write(run: _Run, invoice: Invoice, drafts: list[LineDraft]) -> Invoice:
    if not invoice.is_draft:
        raise BillingError(f"invoice {invoice.number} is finalized and never changes")
    drafts = sorted(drafts, key=lambda line: line.sort_key)
    invoice.team_slug, invoice.team_name, invoice.cost_center = _snapshot(
        run.teams, invoice.team_pk
    )
    number_slug = "unallocated" if invoice.team_pk == NO_TEAM else invoice.team_slug
    invoice.number = f"{run.tenant.slug}-{months.label(invoice.month)}-{number_slug}"
    invoice.timezone, invoice.allocates_unallocated = run.at.timezone, run.at.allocate
    invoice.total_usd = sum((line.amount_usd for line in drafts), ZERO)
    invoice.line_count, invoice.generated_at = len(drafts), run.now
    invoice.save()
    stored = InvoiceLine.objects.for_tenant(run.tenant)
    stored.filter(invoice=invoice).delete()  # its tag rows go with the lines (cascade)
    written = stored.bulk_create(
        [_line(run.tenant, invoice, n, line) for n, line in enumerate(drafts, 1)], batch_size=1000
    )
    tags = [
        _tag(run.tenant, invoice, row, tag)
        for row, line in zip(written, drafts, strict=True)
        for tag in run.tags.line_tags(invoice.team_pk, line)
    ]
    InvoiceLineTag.objects.for_tenant(run.tenant).bulk_create(tags, batch_size=1000)
    return invoice


def _line(tenant: Tenant, invoice: Invoice, position: int, line: LineDraft) -> InvoiceLine:
    return InvoiceLine(
        tenant=tenant,
        invoice=invoice,
        position=position,
        line_type=line.line_type,
        usage_month=line.usage_month,
        provider=line.provider,
        model=line.model,
        feature=line.feature,
        requests=line.requests,
        input_tokens=line.input_tokens,
        output_tokens=line.output_tokens,
        cache_read_tokens=line.cache_read_tokens,
        cache_write_tokens=line.cache_write_tokens,
        unpriced_requests=line.unpriced_requests,
        cost_usd=line.cost_usd,
        amount_usd=line.amount_usd,
    )


def _tag(
    tenant: Tenant, invoice: Invoice, line: InvoiceLine, tag: tag_lines.LineTag
) -> InvoiceLineTag:
    return InvoiceLineTag(
        tenant=tenant,
        invoice=invoice,
        line=line,
        key_position=tag.key_position,
        tag_key=tag.tag_key,
        tag_value=tag.tag_value,
        amount_usd=tag.amount_usd,
    )


def _remove_empty_drafts(existing: dict[int, Invoice], by_team: ByTeam) -> int:
    removed = 0
    for pk, invoice in existing.items():
        if invoice.is_draft and pk not in by_team:
            invoice.delete()  # its lines go with it (cascade)
            removed += 1
    return removed


def finalize_invoice(
    tenant: Tenant, invoice_id: int, user: User = None, now: datetime | None = None
) -> Invoice:
    """Freeze a draft: from now on neither it nor its lines (nor its CSV) ever change."""
    with transaction.atomic():
        lock(tenant)
        invoice = Invoice.objects.for_tenant(tenant).select_for_update().get(pk=invoice_id)
        return _finalize(tenant, invoice, user, now or timezone.now())


def finalize_month(
    tenant: Tenant, month: date, user: User = None, now: datetime | None = None
) -> list[Invoice]:
    now = now or timezone.now()
    check_month(tenant, month, now, finalize=True)
    with transaction.atomic():
        lock(tenant)
        drafts = Invoice.objects.for_tenant(tenant).filter(month=month, status=InvoiceStatus.DRAFT)
        return [_finalize(tenant, invoice, user, now) for invoice in drafts.order_by("team_slug")]


def _finalize(tenant: Tenant, invoice: Invoice, user: User, now: datetime) -> Invoice:
    if not invoice.is_draft:
        return invoice  # finalizing twice is harmless
    if not months.has_closed(invoice.month, invoice.timezone, now):
        raise BillingError(
            f"{months.label(invoice.month)} has not ended yet in {invoice.timezone}; "
            "its invoices can be finalized once the month is over"
        )
    invoice.status = InvoiceStatus.FINALIZED
    invoice.finalized_at = now
    invoice.finalized_by = user if isinstance(user, get_user_model()) else None
    # Fingerprint of the CSV as sent; the CSV is built from stored rows only, so it stays.
    invoice.csv_sha256 = csv_export.invoice_sha256(tenant, invoice)
    invoice.save(update_fields=["status", "finalized_at", "finalized_by", "csv_sha256"])
    details = {"month": months.label(invoice.month), "total_usd": str(invoice.total_usd)}
    record(tenant, user, Action.INVOICE_FINALIZED, invoice.number, details)
    return invoice


def close_due_months(tenant_id: int, now: datetime | None = None) -> list[GenerationResult]:
    """Generate drafts for the months that ended in the tenant's time zone since last time.

    Idempotent: the settings row remembers the last month closed, under the tenant lock.
    """
    now = now or timezone.now()
    tenant = Tenant.objects.get(pk=tenant_id)
    due = months.previous_month(months.current_month(tenant.timezone, now))
    with transaction.atomic():
        settings = lock(tenant)
        done = settings.last_closed_month
        if done is not None and done >= due:
            return []
        first = months.next_month(done) if done else due
        first = max(first, _minus_months(due, CATCH_UP_MONTHS - 1))
        results = [generate_month(tenant, m, now=now) for m in months.months_between(first, due)]
        settings.last_closed_month = due
        settings.save(update_fields=["last_closed_month", "updated_at"])
    return results


def _minus_months(month: date, count: int) -> date:
    for _ in range(count):
        month = months.previous_month(month)
    return month
