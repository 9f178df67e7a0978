"""`/prices/` (members read, admins edit) and its re-price preview, apply and progress pages.

A preview prices every retained event from its day (seconds of CPU per 300k events): the
page asks the worker for it and shows its progress, as the apply's page does."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core import replica
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
from prices.models import RepricePreview, RepriceRun, RepriceStatus
from pricing.catalog_updates import catalog_data_date
from pricing.models import PriceOverride
from pricing.services import (
    PriceError,
    delete_price_override,
    end_price_override,
    set_price_override,
)
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
@replica.read_view  # figures only; after a post the browser reads the primary
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
    """GET: the day to re-price from; POST: ask the worker for its preview, then show it."""
    posted = request.method == "POST"
    data = request.POST if posted else request.GET
    form = SinceForm(data)
    context: dict[str, Any] = {"ctx": ctx, "form": form}
    if not posted and "since" not in data:
        return render(request, "prices/preview.html", context)
    since = _valid_since(form)
    if since is None:
        return render(request, "prices/preview.html", context, status=400)
    if not posted:
        return render(request, "prices/preview.html", context)
    again = bool(form.cleaned_data.get("again"))
    preview, new = services.request_preview(ctx.tenant, since, request.user, again)
    if new:
        _queue(tasks.preview, preview)
    return redirect("reprice-preview-show", preview_id=preview.pk)


def _valid_since(form: SinceForm) -> date | None:
    if not form.is_valid():
        return None
    since: date = form.cleaned_data["since"]
    try:
        services.check_since(since)
    except services.RepriceError as exc:
        form.add_error("since", str(exc).removeprefix("since: "))
        return None
    return since


def _queue(task: Any, record: RepricePreview | RepriceRun) -> None:
    """Hand a recorded preview or run to the worker; a broker that is down fails the record
    (try again), never the page."""
    try:
        task.delay(record.tenant_id, record.pk)
    except Exception as exc:
        services.not_queued(record, exc)


@member_view(Role.FINANCE)
def reprice_preview_show(request: HttpRequest, ctx: TenantContext, preview_id: int) -> HttpResponse:
    preview = get_object_or_404(RepricePreview.objects.for_tenant(ctx.tenant), pk=preview_id)
    done, total = selectors.preview_progress(preview)
    context: dict[str, Any] = {
        "ctx": ctx,
        "form": SinceForm(initial={"since": preview.since.isoformat()}),
        "preview": preview,
        "done": done,
        "total": total,
        "can_edit": ctx.allows(Role.ADMIN),
        "active_run": selectors.active_run(ctx.tenant),
        "stale": preview.pricing_version != ctx.tenant.pricing_version,
        "teams": TeamLabels.of(ctx.tenant),
        "apply_form": ApplyForm(initial={"preview": preview.pk}),
    }
    return render(request, "prices/preview.html", context)


@require_POST
@member_view(Role.ADMIN)
def reprice_apply(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form = ApplyForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Could not re-price: {errors_text(form)}")
        return redirect("prices")
    previews = RepricePreview.objects.for_tenant(ctx.tenant)
    preview = get_object_or_404(previews, pk=form.cleaned_data["preview"])
    try:
        if preview.status != RepriceStatus.DONE:
            raise services.RepriceError("its preview is not computed yet; wait for it")
        run = services.request_reprice(
            ctx.tenant, preview.since, preview.pricing_version, request.user, preview
        )
    except services.RepriceError as exc:
        messages.error(request, f"Could not re-price: {exc}")
        return redirect("reprice-preview-show", preview_id=preview.pk)
    _queue(tasks.reprice, run)
    return redirect("reprice-run", run_id=run.pk)


@member_view(Role.FINANCE)
def reprice_run(request: HttpRequest, ctx: TenantContext, run_id: int) -> HttpResponse:
    runs = RepriceRun.objects.for_tenant(ctx.tenant).select_related("requested_by", "preview")
    run = get_object_or_404(runs, pk=run_id)
    done, total = selectors.run_progress(run)
    context = {"ctx": ctx, "run": run, "done": done, "total": total}
    return render(request, "prices/run.html", context)
