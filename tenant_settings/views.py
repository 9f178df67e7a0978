"""`/settings/`: a tenant admin's keys and alert channels (prices are on `/prices/`)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from alerts.models import AlertChannel, Delivery
from alerts.services import ChannelNameTaken, create_channel, delete_channel, send_test
from core.pages import Action, member_view, posted_action
from tenant_settings.forms import ApiKeyForm, ChannelForm
from tenant_settings.tag_dimensions import set_tags, tags_context
from tenants.context import TenantContext
from tenants.models import ApiKey, Role
from tenants.services import create_api_key, revoke_api_key


def _create_key(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    form = ApiKeyForm(ctx.tenant, request.POST)
    if not form.is_valid():
        return {"key_form": form}
    key, plaintext = create_api_key(
        ctx.tenant,
        team=form.cleaned_data["team"],
        name=form.cleaned_data["name"],
        scope=form.cleaned_data["scope"],
        actor=request.user,
    )
    # Shown once, in this response only: only its hash is stored.
    return {"new_key": plaintext, "new_key_name": key.name}


def _revoke_key(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    key = get_object_or_404(ApiKey.objects.for_tenant(ctx.tenant), pk=request.POST.get("id"))
    revoke_api_key(key, actor=request.user)
    messages.success(request, f"Revoked key {key.prefix}.")
    return None


def _add_channel(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    form = ChannelForm(request.POST, instance=AlertChannel(tenant=ctx.tenant))
    if not form.is_valid():
        return {"channel_form": form}
    try:
        create_channel(form.save(commit=False), actor=request.user)
    except ChannelNameTaken as exc:
        form.add_error("name", str(exc))
        return {"channel_form": form}
    messages.success(request, f"Added channel {form.instance.name}.")
    return None


def _test_channel(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    channel = get_object_or_404(
        AlertChannel.objects.for_tenant(ctx.tenant), pk=request.POST.get("id")
    )
    send_test(channel)
    messages.success(request, f"Test alert queued for {channel.name}; its delivery shows below.")
    return None


def _delete_channel(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    channel = get_object_or_404(
        AlertChannel.objects.for_tenant(ctx.tenant), pk=request.POST.get("id")
    )
    delete_channel(channel, actor=request.user)
    messages.success(request, f"Deleted channel {channel.name}.")
    return None


ACTIONS: dict[str, Action] = {
    "create_key": _create_key,
    "revoke_key": _revoke_key,
    "add_channel": _add_channel,
    "test_channel": _test_channel,
    "delete_channel": _delete_channel,
    "set_tags": set_tags,
}


@member_view(Role.ADMIN)
def settings_page(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    extra: dict[str, Any] = {}
    if request.method == "POST":
        outcome = posted_action(request, ctx, ACTIONS, "settings")
        if isinstance(outcome, HttpResponse):
            return outcome
        extra = outcome
    return render(request, "tenant_settings/settings.html", _context(ctx, extra))


def _context(ctx: TenantContext, extra: dict[str, Any]) -> dict[str, Any]:
    tenant = ctx.tenant
    deliveries = (
        Delivery.objects.for_tenant(tenant)
        .select_related("alert", "channel")
        .order_by("-updated_at")[:30]
    )
    return {
        "ctx": ctx,
        "keys": ApiKey.objects.for_tenant(tenant).select_related("team").order_by("-created_at"),
        "channels": AlertChannel.objects.for_tenant(tenant),
        "deliveries": deliveries,
        "key_form": ApiKeyForm(tenant),
        "channel_form": ChannelForm(),
        **tags_context(tenant),
        **extra,
    }
