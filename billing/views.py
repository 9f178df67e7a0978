"""Chargeback and invoice pages: finance and admins only; reads via selectors, writes via services."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing import charts, csv_export, months, selectors, services, tag_chargeback, tag_lines
from billing.models import Invoice
from billing.money import ZERO
from core import replica
from core.pages import member_view
from core.query import text_param
from rollups import tag_sql
from rollups.tag_selectors import TAG_GROUP_PREFIX
from tenants.context import TenantContext
from tenants.labels import TeamLabels
from tenants.models import Role, Team


def _month(raw: str | None, default: date) -> tuple[date, str | None]:
    """The `month` parameter, or the default with a message saying why it was ignored."""
    if not raw:
        return default, None
    try:
        return months.parse_month(raw), None
    except months.BadMonth as exc:
        return default, f"{exc}; showing {months.label(default)}."


def _month_or_404(raw: str) -> date:
    try:
        return months.parse_month(raw)
    except months.BadMonth:
        raise Http404("no such month") from None


def _team_or_404(teams: TeamLabels, label: str) -> Team | None:
    """The team drilled into: None for the whole tenant, for unallocated spend and for a
    deleted team (their labels name no team that exists); 404 for a label that names nothing."""
    if not label:
        return None
    pk = teams.pk(label)
    if pk is None:
        raise Http404("no such team")
    return teams.team(pk)


@member_view(Role.FINANCE)
@replica.read_view
def chargeback(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    current = months.current_month(ctx.tenant.timezone)
    month, error = _month(request.GET.get("month"), current)
    slug = text_param(request.GET, "team", 64)
    teams = TeamLabels.of(ctx.tenant)
    team = _team_or_404(teams, slug)
    filters = {k: v for k in selectors.FILTERABLE if (v := text_param(request.GET, k))}
    tag_key, by_error = _by(ctx, text_param(request.GET, "by", 200))
    page = selectors.chargeback(ctx.tenant, month, slug, filters, teams)
    invoices = selectors.invoices_of_month(ctx.tenant, month)
    by = {"by": f"{TAG_GROUP_PREFIX}{tag_key}"} if tag_key else {}
    context = {
        "ctx": ctx, "page": page, "month": month, "error": error or by_error, "slug": slug,
        "team": team, "filters": filters, "change": page.change, "invoices": invoices,
        "drafts": sum(1 for i in invoices if i.is_draft),
        "finalized": sum(1 for i in invoices if not i.is_draft),
        "choices": selectors.filter_choices(ctx.tenant, month, page.basis.timezone),
        "keep": urlencode({"month": months.label(month), **filters, **by}),
        "nav": _month_nav(month, current, {"team": slug, **filters, **by}),
        "settings": selectors.billing_settings(ctx.tenant),
        "figures": charts.chargeback_figures(page),
        "tag_keys": tag_sql.chosen_keys(ctx.tenant.pk), "by": by.get("by", ""),
        "tags": _tag_spend(ctx, page, tag_key, filters) if tag_key else None,
    }  # fmt: skip
    return render(request, "billing/chargeback.html", context)


def _by(ctx: TenantContext, raw: str) -> tuple[str | None, str | None]:
    """The tag key to allocate by (None: by team), or None and a message saying why not."""
    try:
        return tag_chargeback.parse_by(ctx.tenant, raw), None
    except tag_chargeback.UnknownTagKey as exc:
        return None, f"{exc}; showing spend by team."


def _tag_spend(
    ctx: TenantContext, page: selectors.Chargeback, key: str, filters: dict[str, str]
) -> tag_chargeback.TagSpend:
    # A drilled team's rows are its own tagged usage; the whole tenant's need no team filter.
    scope = {"team_pk": page.team.team_pk} if page.team else {}
    totals = (page.total, page.previous_total)
    tz_name = page.basis.timezone
    return tag_chargeback.tag_spend(
        ctx.tenant, key, page.month, tz_name, totals, {**filters, **scope}
    )


def _month_nav(month: date, current: date, keep: dict[str, str]) -> dict[str, Any]:
    def link(m: date) -> str:
        return "?" + urlencode({"month": months.label(m), **{k: v for k, v in keep.items() if v}})

    later = months.next_month(month)
    return {
        "previous": link(months.previous_month(month)),
        "next": link(later) if later <= current else None,
        "is_current": month == current,
    }


@require_POST
@member_view(Role.ADMIN)
def allocation(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    allocate = request.POST.get("allocate") == "on"
    services.set_allocation(ctx.tenant, allocate)
    state = "now shared out to teams" if allocate else "now shown as unallocated"
    messages.success(request, f"Spend without a team is {state} (drafts change when regenerated).")
    return redirect(f"{reverse('chargeback')}?{request.POST.get('back', '')}")


@member_view(Role.FINANCE)
@replica.read_view
def invoices(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    current = months.current_month(ctx.tenant.timezone)
    default = selectors.latest_invoiced_month(ctx.tenant) or months.previous_month(current)
    month, error = _month(request.GET.get("month"), default)
    rows = selectors.invoices_of_month(ctx.tenant, month)
    context = {
        "ctx": ctx,
        "month": month,
        "error": error,
        "rows": rows,
        "total": sum((i.total_usd for i in rows), ZERO),
        "drafts": [i for i in rows if i.is_draft],
        "closed": months.has_closed(month, ctx.tenant.timezone),
        "summaries": selectors.month_summaries(ctx.tenant),
        "suggested": months.previous_month(current),
    }
    return render(request, "billing/invoices.html", context)


def _back_to(month: date) -> HttpResponse:
    return redirect(f"{reverse('invoices')}?month={months.label(month)}")


@require_POST
@member_view(Role.FINANCE)
def generate(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    try:
        month = months.parse_month(request.POST.get("month", ""))
        result = services.generate_month(ctx.tenant, month, user=request.user)
    except (months.BadMonth, services.BillingError) as exc:
        messages.error(request, str(exc))
        return redirect("invoices")
    messages.success(request, _generated_message(result))
    return _back_to(month)


def _generated_message(result: services.GenerationResult) -> str:
    text = (
        f"{months.label(result.month)}: {len(result.created)} new and "
        f"{len(result.regenerated)} regenerated drafts, {len(result.kept)} finalized unchanged."
    )
    if result.deferred:
        text += f" {len(result.deferred)} teams new to this closed month are billed next month."
    return text


@require_POST
@member_view(Role.FINANCE)
def finalize(request: HttpRequest, ctx: TenantContext, pk: int) -> HttpResponse:
    invoice = get_object_or_404(Invoice.objects.for_tenant(ctx.tenant), pk=pk)
    try:
        services.finalize_invoice(ctx.tenant, invoice.pk, request.user)
        messages.success(request, f"Invoice {invoice.number} is finalized.")
    except services.BillingError as exc:
        messages.error(request, str(exc))
    return _back_to(invoice.month)


@require_POST
@member_view(Role.FINANCE)
def finalize_month(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    month = _month_or_404(request.POST.get("month", ""))
    try:
        done = services.finalize_month(ctx.tenant, month, request.user)
        messages.success(request, f"{months.label(month)}: {len(done)} invoices finalized.")
    except services.BillingError as exc:
        messages.error(request, str(exc))
    return _back_to(month)


@member_view(Role.FINANCE)
@replica.read_view
def invoice(request: HttpRequest, ctx: TenantContext, pk: int) -> HttpResponse:
    found = get_object_or_404(Invoice.objects.for_tenant(ctx.tenant), pk=pk)
    lines = selectors.invoice_lines(ctx.tenant, found)[:5000]
    tags = tag_lines.invoice_tag_totals(ctx.tenant, found.pk)
    page = {"ctx": ctx, "invoice": found, "lines": lines, "tags": tags}
    return render(request, "billing/invoice.html", page)


def _csv(request: HttpRequest, chunks: Iterator[bytes], filename: str) -> StreamingHttpResponse:
    # The rows are read while the body streams, after the view returned: from the replica then.
    body = replica.streamed(request, chunks)
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


# member_view is typed for HttpResponse; a streamed download is a StreamingHttpResponse.
@member_view(Role.FINANCE)  # type: ignore[arg-type]
def invoice_csv(request: HttpRequest, ctx: TenantContext, pk: int) -> StreamingHttpResponse:
    found = get_object_or_404(Invoice.objects.for_tenant(ctx.tenant), pk=pk)
    return _csv(request, csv_export.invoice_csv(ctx.tenant, found), f"invoice-{found.number}.csv")


@member_view(Role.FINANCE)  # type: ignore[arg-type]
def month_csv(request: HttpRequest, ctx: TenantContext, month: str) -> StreamingHttpResponse:
    parsed = _month_or_404(month)
    name = f"invoices-{ctx.tenant.slug}-{months.label(parsed)}.csv"
    return _csv(request, csv_export.month_csv(ctx.tenant, parsed), name)


@member_view(Role.FINANCE)  # type: ignore[arg-type]
def focus_csv(request: HttpRequest, ctx: TenantContext, month: str) -> StreamingHttpResponse:
    parsed = _month_or_404(month)
    name = f"focus-{ctx.tenant.slug}-{months.label(parsed)}.csv"
    return _csv(request, csv_export.focus_csv(ctx.tenant, parsed), name)
