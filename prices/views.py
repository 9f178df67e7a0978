"""`/prices/` (members read, admins edit) and its re-price preview, apply and progress pages."""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.pages import Action, member_view, posted_action
from core.query import text_param
from prices import selectors, services, tasks
from prices.forms import (
    ApplyForm,
    EndPriceForm,
    PeriodForm,
    PriceForm,
    SinceForm,
    errors_text,
)
from prices.models import RepriceRun
from pricing.catalog_updates import catalog_data_date
from pricing.models import PriceOverride
from pricing.services import (
    PriceError,
    delete_price_override,
    end_price_override,
    set_price_override,
)
from rollups import repricing
from tenants.context import TenantContext
from tenants.labels import TeamLabels
from tenants.models import Role

DEFAULT_DAYS = 30
OFFER = "prices_reprice_offer"  # session key: the day a re-price should start from


def _offer(request: HttpRequest, day: date) -> None:
    """Offer "re-price from `day`" on the page, from the first day that can still be re-priced."""
    request.session[OFFER] = max(day, services.oldest_day()).isoformat()


def _add_price(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    form = PriceForm(request.POST)
    if not form.is_valid():
        return {"price_form": form}
    override = set_price_override(ctx.tenant, **form.cleaned_data, actor=request.user)
    messages.success(request, f"Saved the price of {override}. Stored events keep their cost.")
    _offer(request, override.effective_from.date())
    return None


def _end_price(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    form = EndPriceForm(request.POST)
    if not form.is_valid():
        return {"end_form": form}
    override = get_object_or_404(
        PriceOverride.objects.for_tenant(ctx.tenant), pk=form.cleaned_data["id"]
    )
    try:
        end_price_override(
            ctx.tenant, override.pk, form.cleaned_data["ended_at"], actor=request.user
        )
    except PriceError as exc:
        form.add_error("ended_at", str(exc).removeprefix("ended_at: "))
        return {"end_form": form}
    except PriceOverride.DoesNotExist:  # deleted by someone else since the lookup above
        raise Http404("no such price") from None
    messages.success(request, f"Ended the price of {override}; the catalog prices it from then on.")
    _offer(request, form.cleaned_data["ended_at"].date())
    return None


def _delete_price(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    override = get_object_or_404(
        PriceOverride.objects.for_tenant(ctx.tenant), pk=_id(request.POST.get("id"))
    )
    delete_price_override(ctx.tenant, override.pk, actor=request.user)
    messages.success(request, f"Deleted the price of {override}.")
    _offer(request, override.effective_from.date())
    return None


def _id(raw: str | None) -> int:
    """A primary key from a form; anything else matches nothing (404, never a 500)."""
    return int(raw) if raw and raw.isascii() and raw.isdigit() and len(raw) < 19 else 0


ACTIONS: dict[str, Action] = {
    "add_price": _add_price,
    "end_price": _end_price,
    "delete_price": _delete_price,
}


def _period(request: HttpRequest) -> tuple[PeriodForm, date, date]:
    form = PeriodForm(request.GET)
    today = timezone.now().date()
    data = form.cleaned_data if form.is_valid() else {}
    last = data.get("end") or today
    first = data.get("start") or last - timedelta(days=DEFAULT_DAYS - 1)
    return form, first, last


def _named_model(request: HttpRequest) -> dict[str, str]:
    """ "Set a price" links name the model: the form starts filled in with it."""
    return {name: text_param(request.GET, name) for name in ("provider", "model")}


@member_view()
def prices_page(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    extra: dict[str, Any] = {}
    if request.method == "POST":
        if not ctx.allows(Role.ADMIN):
            raise PermissionDenied("changing prices needs the Admin role")
        outcome = posted_action(request, ctx, ACTIONS, "prices")
        if isinstance(outcome, HttpResponse):
            return outcome
        extra = outcome
    period, first, last = _period(request)
    offer = request.session.pop(OFFER, None)
    return render(
        request,
        "prices/prices.html",
        {
            "ctx": ctx,
            "period": period,
            "first": first,
            "last": last,
            "models": selectors.models_seen(ctx.tenant, first, last),
            "overrides": selectors.overrides(ctx.tenant),
            "runs": selectors.recent_runs(ctx.tenant),
            "catalog_date": catalog_data_date().label,
            "oldest": services.oldest_day(),
            "offer": offer,
            "since_default": offer or last.isoformat(),
            "price_form": PriceForm(initial=_named_model(request)),
            "end_form": EndPriceForm(),
            "can_edit": ctx.allows(Role.ADMIN),
            **extra,
        },
    )


@member_view(Role.FINANCE)
def reprice_preview(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = SinceForm(request.GET)
    context: dict[str, Any] = {"ctx": ctx, "form": form, "can_edit": ctx.allows(Role.ADMIN)}
    if form.is_valid():
        since = form.cleaned_data["since"]
        try:
            services.check_since(since)
        except services.RepriceError as exc:
            form.add_error("since", str(exc).removeprefix("since: "))
        else:
            started = time.monotonic()
            preview = repricing.preview(ctx.tenant, since)
            context.update(
                preview=preview,
                seconds=time.monotonic() - started,
                teams=TeamLabels.of(ctx.tenant),
                apply_form=ApplyForm(initial={"since": since, "version": preview.pricing_version}),
            )
    status = 200 if form.is_valid() else 400
    return render(request, "prices/preview.html", context, status=status)


@require_POST
@member_view(Role.ADMIN)
def reprice_apply(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = ApplyForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Could not re-price: {errors_text(form)}")
        return redirect("prices")
    since = form.cleaned_data["since"]
    try:
        run = services.request_reprice(
            ctx.tenant, since, form.cleaned_data["version"], request.user
        )
    except services.RepriceError as exc:
        messages.error(request, f"Could not re-price: {exc}")
        return redirect(f"/prices/reprice/?since={since.isoformat()}")
    transaction.on_commit(lambda: tasks.reprice.delay(ctx.tenant.pk, run.pk))
    return redirect("reprice-run", run_id=run.pk)


@member_view(Role.FINANCE)
def reprice_run(request: HttpRequest, ctx: TenantContext, run_id: int) -> HttpResponse:
    run = get_object_or_404(RepriceRun.objects.for_tenant(ctx.tenant), pk=run_id)
    done, total = selectors.run_progress(run)
    context = {"ctx": ctx, "run": run, "done": done, "total": total}
    return render(request, "prices/run.html", context)
