"""Dashboard pages: small function views; the figures come from `dashboard.selectors`."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core import replica
from core.pages import member_view
from dashboard import (
    charts,
    family_selectors,
    feature_pages,
    selectors,
    stacks,
    status_selectors,
    tag_pages,
)
from dashboard.filters import RANGES, Filters, parse_filters
from dashboard.filters import stacks as stack_choices
from rollups.models import ConsumerDailyRollup
from rollups.tag_sql import chosen_keys
from tenants.context import TenantContext, switch_tenant
from tenants.labels import TeamLabels
from tenants.models import Tenant


def _base(
    request: HttpRequest, ctx: TenantContext, f: Filters, teams: TeamLabels
) -> dict[str, Any]:
    """What every page shows: the filter bar, the totals and the unpriced-usage banner."""
    totals, previous = selectors.totals_now_and_before(ctx.tenant, f, teams)
    keys = list(f.tag_keys)
    return {
        "ctx": ctx,
        "f": f,
        "ranges": RANGES,
        "stacks": stack_choices(keys),
        "choices": selectors.filter_choices(ctx.tenant, teams),
        "tag_choices": tag_pages.tag_choices(ctx.tenant, f, keys),
        "totals": totals,
        "previous": previous,
        "unpriced": selectors.unpriced_models(ctx.tenant, f, teams),
        "tag_keys": keys,  # the navigation's tag pages
    }


def page_filters(request: HttpRequest, ctx: TenantContext) -> Filters:
    """The query string's filters; a tag filter or stack may name the tenant's own keys."""
    return parse_filters(request.GET, tag_keys=chosen_keys(ctx.tenant.pk))


def _spend_chart(tenant: Tenant, f: Filters, teams: TeamLabels, stack: str) -> dict[str, Any]:
    periods, series = stacks.stacked_spend(tenant, f, teams, stack)
    return charts.stacked_spend(periods, series, stack)


def _trend_charts(tenant: Tenant, f: Filters, teams: TeamLabels) -> dict[str, Any]:
    per = selectors.per_period(tenant, f, teams)
    periods = selectors.periods(f)
    return {"efficiency": charts.efficiency(periods, per), "quality": charts.quality(periods, per)}


def _has_usage(page: dict[str, Any]) -> bool:
    return bool(page["totals"].requests or page["previous"].requests)


@member_view()
@replica.read_view
def overview(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    f, teams = page_filters(request, ctx), TeamLabels.of(ctx.tenant)
    page = _base(request, ctx, f, teams)
    dims = ("team", "feature", "model", "endpoint", "status")
    tops = selectors.tops(ctx.tenant, f, teams, dims, 5)
    users = selectors.consumers(ctx.tenant, f, teams, ConsumerDailyRollup.Kind.USER, 5)
    page.update(
        outlook=selectors.month_outlook(ctx.tenant, f, teams),
        tops=tops,
        users=users,
        figures={
            "spend": _spend_chart(ctx.tenant, f, teams, f.stack),
            **_trend_charts(ctx.tenant, f, teams),
        },
        has_usage=_has_usage(page),
    )
    return render(request, "dashboard/overview.html", page)


def _breakdown(
    request: HttpRequest,
    ctx: TenantContext,
    dim: str,
    title: str,
    f: Filters | None = None,
    outcomes: bool = False,
) -> HttpResponse:
    f, teams = f or page_filters(request, ctx), TeamLabels.of(ctx.tenant)
    page = _base(request, ctx, f, teams)
    rows = selectors.top(ctx.tenant, f, teams, dim, limit=None)
    if outcomes:
        found = status_selectors.outcomes(ctx.tenant, f, teams, dim)
        rows = status_selectors.with_outcomes(rows, found)
    page.update(
        outcomes=outcomes,
        title=title,
        dim=dim,
        rows=rows,
        figures={
            "spend": _spend_chart(ctx.tenant, f, teams, dim),
            "share": charts.share_bars(f"Top {dim}s", rows[:15]),
        },
        has_usage=_has_usage(page),
    )
    return render(request, "dashboard/breakdown.html", page)


@member_view()
@replica.read_view
def teams(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return _breakdown(request, ctx, "team", "Teams")


@member_view()
@replica.read_view
def features(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return _breakdown(request, ctx, "feature", "Features")


@member_view()
@replica.read_view
def models(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return _breakdown(request, ctx, "model", "Models")


@member_view()
@replica.read_view
def endpoints(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    return _breakdown(request, ctx, "endpoint", "Endpoints", outcomes=True)


@member_view()
@replica.read_view
def statuses(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    """Calls and spend per status class, so retries and rate limiting show."""
    return _breakdown(request, ctx, "status", "Status classes")


@member_view()
@replica.read_view
def tag(request: HttpRequest, ctx: TenantContext, key: str) -> HttpResponse:
    """Spend per value of one chosen tag key; another tenant's keys are 404 here."""
    dimension = tag_pages.dimension(ctx.tenant, key)
    if dimension is None:
        raise Http404("no such tag key")
    f, teams = tag_pages.for_key(page_filters(request, ctx), key), TeamLabels.of(ctx.tenant)
    page = _base(request, ctx, f, teams)
    rows = tag_pages.tag_top(ctx.tenant, f, teams, key)
    page.update(
        title=f"Tag: {key}",
        dimension=dimension,
        rows=rows,
        outcomes=True,
        figures={"share": charts.share_bars(f"Top values of {key}", rows[:15])},
        has_usage=_has_usage(page),
    )
    return render(request, "dashboard/tag.html", page)


def _detail(
    ctx: TenantContext, f: Filters, labels: TeamLabels, dims: tuple[str, ...]
) -> dict[str, Any]:
    """What a team's and a feature's page show besides the filter bar and the totals: the
    month outlook, top lists of `dims`, model families, each chosen tag key's top values,
    the spend chart and the trends, all under the page's filters (its team or feature)."""
    return {
        "outlook": selectors.month_outlook(ctx.tenant, f, labels),
        "tops": selectors.tops(ctx.tenant, f, labels, dims, 8),
        "families": family_selectors.top_families(ctx.tenant, f, labels),
        "tag_tops": tag_pages.breakdowns(ctx.tenant, f, labels),
        "figures": {
            "spend": _spend_chart(ctx.tenant, f, labels, f.stack),
            **_trend_charts(ctx.tenant, f, labels),
        },
    }


@member_view()
@replica.read_view
def team_detail(request: HttpRequest, ctx: TenantContext, slug: str) -> HttpResponse:
    labels = TeamLabels.of(ctx.tenant)
    team_pk = labels.pk(slug)
    team = labels.team(team_pk) if team_pk is not None else None
    if team is None:
        raise Http404("no such team")
    f = page_filters(request, ctx)
    f = replace(f, team=team.slug, stack=f.stack if "stack" in request.GET else "feature")
    page = _base(request, ctx, f, labels)
    page.update(
        _detail(ctx, f, labels, ("feature", "model", "endpoint", "status")),
        team=team,
        users=selectors.consumers(ctx.tenant, f, labels, ConsumerDailyRollup.Kind.USER, 8),
        has_usage=_has_usage(page),
    )
    return render(request, "dashboard/team.html", page)


@member_view()
@replica.read_view
def feature_detail(request: HttpRequest, ctx: TenantContext, name: str) -> HttpResponse:
    """One feature's spend, by the teams, models, endpoints and tag values it went to; an
    unknown feature (another tenant's included) is 404. Its filter bar's feature choice
    leads to that feature's page ("All" to the features breakdown)."""
    if not feature_pages.known(ctx.tenant, name):
        raise Http404("no such feature")
    f, labels = page_filters(request, ctx), TeamLabels.of(ctx.tenant)
    if "feature" in request.GET and f.feature != name:
        return _other_feature(request, f)
    f = replace(f, feature=name, stack=f.stack if "stack" in request.GET else "model")
    page = _base(request, ctx, f, labels)
    page.update(
        _detail(ctx, f, labels, ("team", "model", "endpoint", "status")),
        feature=name,
        features=f"{reverse('features')}?{replace(f, feature='').query(stack='')}",
        whatif=f"{reverse('whatif')}?{f.query(stack='')}",
        has_usage=_has_usage(page),
    )
    return render(request, "dashboard/feature.html", page)


def _other_feature(request: HttpRequest, f: Filters) -> HttpResponse:
    """The filter bar sends its feature choice to the page it is on: that feature's page
    answers it, keeping the other filters (and the stack, if one was asked for)."""
    rest = replace(f, feature="").query(stack=f.stack if "stack" in request.GET else "")
    target = feature_pages.path(f.feature) if f.feature else reverse("features")
    return redirect(f"{target}?{rest}")


@member_view()
@replica.read_view
def consumers(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    f, labels = page_filters(request, ctx), TeamLabels.of(ctx.tenant)
    page = _base(request, ctx, f, labels)
    users = selectors.consumers(ctx.tenant, f, labels, ConsumerDailyRollup.Kind.USER, 25)
    keys = selectors.consumers(ctx.tenant, f, labels, ConsumerDailyRollup.Kind.KEY, 25)
    page.update(
        users=users,
        keys=keys,
        figures={
            "users": charts.share_bars("Top end users", users[:15]),
            "keys": charts.share_bars("Top API keys", keys[:15]),
        },
        has_usage=_has_usage(page),
    )
    return render(request, "dashboard/consumers.html", page)


@require_POST
@member_view()
def switch(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    switch_tenant(request, request.POST.get("tenant", ""))
    return redirect("overview")
