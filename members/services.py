"""Writes for members: invite by email, change a role, remove; a tenant keeps an admin."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from audit.models import Action
from audit.services import Actor, record
from members.tokens import invite_tokens
from tenants.models import Membership, Role, Tenant


class MemberError(Exception):
    """A change refused for a reason the admin should read."""


LAST_ADMIN = "A tenant needs an admin: make someone else admin first."


def _user_for(email: str) -> AbstractUser:
    """The person with this email (their username may be anything), or a new user named by
    it who cannot sign in until they set a password through the invitation."""
    users = get_user_model().objects
    found = list(users.filter(email__iexact=email)[:2]) or list(users.filter(username=email))
    if len(found) == 1:
        return found[0]
    if found:
        raise MemberError(f"Several accounts use {email}; add the person with manage.py.")
    user = users.create(username=email, email=email)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return user


@transaction.atomic
def invite(tenant: Tenant, email: str, role: Role | str, *, actor: Actor = None) -> Membership:
    user = _user_for(email.strip().lower())
    if Membership.objects.for_tenant(tenant).filter(user=user).exists():
        raise MemberError(f"{email} is already a member.")
    membership = Membership.objects.create(tenant=tenant, user=user, role=Role(role))
    record(tenant, actor, Action.MEMBER_INVITED, user.get_username(), {"role": membership.role})
    return membership


def invitation_link(membership: Membership, base_url: str) -> str:
    """The one-time set-password link (https://host/accounts/invite/<uid>/<token>/)."""
    user = membership.user
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    path = reverse("accept-invite", args=[uid, invite_tokens.make_token(user)])
    return base_url.rstrip("/") + path


def send_invitation(membership: Membership, base_url: str, invited_by: str) -> None:
    """Mail the invitation: a set-password link for someone new, a note for someone who can
    already sign in (the demo's console backend prints it to the web server's output)."""
    user = membership.user
    context = {
        "tenant": membership.tenant,
        "role": Role(membership.role).label,
        "invited_by": invited_by,
        "username": user.get_username(),
        "link": None if user.has_usable_password() else invitation_link(membership, base_url),
        "sign_in": base_url.rstrip("/") + settings.LOGIN_URL,
        "days": settings.INVITE_LINK_DAYS,
    }
    subject = render_to_string("members/invite_subject.txt", context).strip()
    body = render_to_string("members/invite_email.txt", context)
    send_mail(subject, body, None, [user.email])


def _locked_admins(tenant: Tenant) -> list[int]:
    # Lock the tenant's admin rows first, always in the same order: two admins demoting each
    # other at once are serialised, and the second sees the first's change (a row that is no
    # longer admin drops out of its lock).
    rows = Membership.objects.for_tenant(tenant).select_for_update().filter(role=Role.ADMIN)
    return list(rows.order_by("pk").values_list("pk", flat=True))


def _locked(tenant: Tenant, membership_id: int) -> tuple[Membership, bool]:
    """The membership, locked, and whether it is the tenant's only admin."""
    admins = _locked_admins(tenant)
    membership = Membership.objects.for_tenant(tenant).select_for_update().get(pk=membership_id)
    return membership, admins == [membership.pk]


@transaction.atomic
def change_role(
    tenant: Tenant, membership_id: int, role: Role | str, *, actor: Actor = None
) -> Membership:
    membership, last_admin = _locked(tenant, membership_id)
    if last_admin and Role(role) != Role.ADMIN:
        raise MemberError(LAST_ADMIN)
    before, membership.role = membership.role, Role(role)
    membership.save(update_fields=["role"])
    if before != membership.role:
        details = {"from": before, "to": membership.role}
        username = membership.user.get_username()
        record(tenant, actor, Action.MEMBER_ROLE_CHANGED, username, details)
    return membership


@transaction.atomic
def remove(tenant: Tenant, membership_id: int, *, actor: Actor = None) -> Membership:
    membership, last_admin = _locked(tenant, membership_id)
    if last_admin:
        raise MemberError(LAST_ADMIN)
    membership.delete()
    details = {"role": membership.role}
    record(tenant, actor, Action.MEMBER_REMOVED, membership.user.get_username(), details)
    return membership


@transaction.atomic
def record_for_username(
    username: str, actor: Actor, action: Action, details: dict[str, str]
) -> int:
    """Log a sign-in event (lockout, unlock) in every tenant the username belongs to; a
    username nobody has belongs to no tenant, so nothing is logged. Returns the entry count."""
    rows = Membership.unscoped_all_tenants.select_related("tenant")
    memberships = list(rows.filter(user__username=username))
    for membership in memberships:
        record(membership.tenant, actor, action, username, details)
    return len(memberships)
