from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from budgets import charts
from budgets.forms import BudgetForm
from budgets.models import Budget
from budgets.selectors import alert_history, budget_views
from budgets.services import delete_budget, evaluate_and_alert, save_budget
from core import replica
from core.pages import member_view
from tenants.context import TenantContext
from tenants.models import Role


@member_view()
@replica.read_view  # the edit form reads the primary: it saves what it shows
def budgets_page(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    views = budget_views(ctx.tenant)
    figures = {f"budget-{v.budget.pk}": charts.burn(v) for v in views}
    context = {"ctx": ctx, "views": views, "history": alert_history(ctx.tenant), "figures": figures}
    return render(request, "budgets/budgets.html", context)


@member_view(Role.ADMIN)
def budget_edit(request: HttpRequest, ctx: TenantContext, pk: int | None = None) -> HttpResponse:
    budget = get_object_or_404(Budget.objects.for_tenant(ctx.tenant), pk=pk) if pk else None
    form = BudgetForm(ctx.tenant, request.POST or None, instance=budget)
    if request.method == "POST" and form.is_valid():
        saved = save_budget(form.save(commit=False), form.save_m2m, actor=request.user)
        evaluate_and_alert(saved)  # show (and alert on) the new limit straight away
        messages.success(request, f"Saved budget {saved.name}.")
        return redirect("budgets")
    return render(request, "budgets/edit.html", {"ctx": ctx, "form": form, "budget": budget})


@require_POST
@member_view(Role.ADMIN)
def budget_delete(request: HttpRequest, ctx: TenantContext, pk: int) -> HttpResponse:
    budget = get_object_or_404(Budget.objects.for_tenant(ctx.tenant), pk=pk)
    delete_budget(budget, actor=request.user)
    messages.success(request, f"Deleted budget {budget.name}.")
    return redirect("budgets")
