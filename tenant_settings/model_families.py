"""`/settings/model-families/`: the rules that group models into families, for every member
to read; a tenant admin adds and deletes the tenant's own."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.pages import Action, member_view, posted_action
from pricing.families import BUILTIN_RULES
from pricing.models import ModelFamilyRule
from pricing.services import (
    FAMILY_MAX,
    MATCH_MAX,
    FamilyRuleError,
    delete_family_rule,
    set_family_rule,
)
from tenants.context import TenantContext
from tenants.models import Role


class FamilyRuleForm(forms.Form):
    match = forms.CharField(
        max_length=MATCH_MAX,
        label="Model id prefix or glob",
        help_text="Over the catalog's model id: gpt-4o matches gpt-4o-mini too; gpt-4o-mini* "
        "or claude-*-4-5 use a glob.",
    )
    family = forms.CharField(max_length=FAMILY_MAX, label="Family")


def _add_rule(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    form = FamilyRuleForm(request.POST)
    if not form.is_valid():
        return {"form": form}
    try:
        rule = set_family_rule(ctx.tenant, **form.cleaned_data, actor=request.user)
    except FamilyRuleError as exc:
        field, _, words = str(exc).partition(": ")
        form.add_error(field if field in form.fields else None, words or str(exc))
        return {"form": form}
    messages.success(request, f"Models matching {rule.match} are now {rule.family}.")
    return None


def _delete_rule(request: HttpRequest, ctx: TenantContext) -> dict[str, Any] | None:
    match = request.POST.get("match", "")
    if delete_family_rule(ctx.tenant, match, actor=request.user):
        messages.success(request, f"Deleted the rule for {match}.")
    return None


ACTIONS: dict[str, Action] = {"add_rule": _add_rule, "delete_rule": _delete_rule}


@member_view()
def model_families(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    can_edit = ctx.allows(Role.ADMIN)
    extra: dict[str, Any] = {}
    if request.method == "POST":
        if not can_edit:
            raise PermissionDenied("changing model families needs the admin role")
        outcome = posted_action(request, ctx, ACTIONS, "model-families")
        if isinstance(outcome, HttpResponse):
            return outcome
        extra = outcome
    context = {
        "ctx": ctx,
        "can_edit": can_edit,
        "rules": ModelFamilyRule.objects.for_tenant(ctx.tenant),
        "builtin": BUILTIN_RULES,
        "form": FamilyRuleForm(),
        **extra,
    }
    return render(request, "tenant_settings/model_families.html", context)
