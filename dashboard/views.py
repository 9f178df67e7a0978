from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard import selectors
from dashboard.access import member_view
from tenants.context import TenantContext, switch_tenant


@member_view()
def overview(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    data = selectors.overview(ctx.tenant)
    return render(request, "dashboard/overview.html", {"ctx": ctx, "data": data})


@require_POST
@member_view()
def switch(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    switch_tenant(request, request.POST.get("tenant", ""))
    return redirect("overview")
