from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from anomalies import selectors, services
from anomalies.forms import ThresholdsForm
from anomalies.models import Anomaly
from anomalies.runbooks import RUNBOOKS
from core import replica
from core.pages import member_view
from tenants.context import TenantContext
from tenants.models import Role

CHARTS_ON_LIST = 5


@member_view()
@replica.read_view
def anomalies_page(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    active = selectors.active(ctx.tenant)
    figures = {f"anomaly-{a.pk}": selectors.chart(ctx.tenant, a) for a in active[:CHARTS_ON_LIST]}
    context = {
        "ctx": ctx,
        "active": active,
        "past": selectors.past(ctx.tenant),
        "figures": figures,
        "runbooks": RUNBOOKS,
    }
    return render(request, "anomalies/list.html", context)


@member_view()
@replica.read_view
def anomaly_detail(request: HttpRequest, ctx: TenantContext, pk: int) -> HttpResponse:
    anomaly = get_object_or_404(Anomaly.objects.for_tenant(ctx.tenant), pk=pk)
    figures = {"anomaly": selectors.chart(ctx.tenant, anomaly)}
    context = {"ctx": ctx, "a": anomaly, "runbook": RUNBOOKS[anomaly.kind], "figures": figures}
    return render(request, "anomalies/detail.html", context)


@require_POST
@member_view(Role.ADMIN)
def anomaly_action(request: HttpRequest, ctx: TenantContext, pk: int, action: str) -> HttpResponse:
    anomaly = get_object_or_404(Anomaly.objects.for_tenant(ctx.tenant), pk=pk)
    if action == "acknowledge":
        services.acknowledge(anomaly, request.user.get_username(), actor=request.user)
    else:
        services.resolve(anomaly, request.user.get_username())
    messages.success(
        request,
        f"{anomaly.get_kind_display()} on {anomaly.feature}: {anomaly.get_status_display().lower()}.",
    )
    return redirect("anomaly", pk=anomaly.pk)


@member_view(Role.ADMIN)
def thresholds(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    current = services.detection_settings(ctx.tenant)
    form = ThresholdsForm(ctx.tenant, request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved the anomaly thresholds.")
        return redirect("anomalies")
    return render(request, "anomalies/thresholds.html", {"ctx": ctx, "form": form})
