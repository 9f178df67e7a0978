"""`/settings/members/` (admins: invite, change roles, remove, unlock), accepting an
invitation, and changing one's own password."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy

from core.pages import Action, member_view, posted_action
from members import services
from members.forms import InviteForm, RoleForm
from members.lockout import unlock
from members.selectors import members_of
from members.tokens import invite_tokens
from tenants.context import TenantContext, tenant_context
from tenants.models import Membership, Role


def _invite(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    form = InviteForm(request.POST)
    if not form.is_valid():
        return {"invite_form": form}
    try:
        membership = services.invite(
            ctx.tenant, form.cleaned_data["email"], form.cleaned_data["role"], actor=request.user
        )
    except services.MemberError as refused:
        form.add_error("email", str(refused))
        return {"invite_form": form}
    base_url = request.build_absolute_uri("/")
    services.send_invitation(membership, base_url, invited_by=request.user.get_username())
    messages.success(request, f"Invited {form.cleaned_data['email']} as {membership.role}.")
    return None


def _membership(request: HttpRequest, ctx: TenantContext) -> Membership:
    # Another tenant's membership id is simply not found here.
    rows = Membership.objects.for_tenant(ctx.tenant).select_related("user")
    return get_object_or_404(rows, pk=request.POST.get("id"))


def _change_role(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    membership = _membership(request, ctx)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a role.")
        return None
    try:
        services.change_role(
            ctx.tenant, membership.pk, form.cleaned_data["role"], actor=request.user
        )
    except services.MemberError as refused:
        messages.error(request, str(refused))
        return None
    messages.success(request, f"{membership.user} is now {form.cleaned_data['role']}.")
    return None


def _remove(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    membership = _membership(request, ctx)
    try:
        services.remove(ctx.tenant, membership.pk, actor=request.user)
    except services.MemberError as refused:
        messages.error(request, str(refused))
        return None
    messages.success(request, f"Removed {membership.user} from {ctx.tenant.name}.")
    return None


def _unlock(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    membership = _membership(request, ctx)
    unlock(membership.user.get_username(), actor=request.user)
    messages.success(request, f"{membership.user} can sign in again.")
    return None


ACTIONS: dict[str, Action] = {
    "invite": _invite,
    "change_role": _change_role,
    "remove": _remove,
    "unlock": _unlock,
}


@member_view(Role.ADMIN)
def members_page(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    extra: dict[str, Any] = {}
    if request.method == "POST":
        outcome = posted_action(request, ctx, ACTIONS, "members")
        if isinstance(outcome, HttpResponse):
            return outcome
        extra = outcome
    context = {
        "ctx": ctx,
        "rows": members_of(ctx.tenant),
        "roles": Role.choices,
        "invite_form": InviteForm(),
        **extra,
    }
    return render(request, "members/members.html", context)


class AcceptInviteView(auth_views.PasswordResetConfirmView):
    """Django's set-password step, with the invitation's own token and lifetime."""

    token_generator = invite_tokens
    template_name = "members/accept_invite.html"
    success_url = reverse_lazy("login")

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)
        messages.success(self.request, f"Password set. Sign in as {form.user.get_username()}.")
        return response


def _ctx_or_none(request: HttpRequest) -> TenantContext | None:
    """The header's tenant menu, for someone who still has a tenant."""
    try:
        return tenant_context(request)
    except Http404:
        return None


@login_required
def password_change(request: HttpRequest) -> HttpResponseBase:
    view = auth_views.PasswordChangeView.as_view(
        success_url=reverse_lazy("password_change_done"),
        extra_context={"ctx": _ctx_or_none(request)},
    )
    return view(request)


@login_required
def password_change_done(request: HttpRequest) -> HttpResponse:
    messages.success(request, "Your password was changed.")
    return redirect("overview" if _ctx_or_none(request) else "password_change")
