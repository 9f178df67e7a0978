from __future__ import annotations

import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from core.roles import Role
from tenants.scoping import TenantOwned

__all__ = ["ApiKey", "Membership", "Role", "Scope", "Team", "Tenant"]


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"{value!r} is not a known time zone")


class Tenant(models.Model):
    """An organisation: everything else belongs to exactly one tenant."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    # Bumped whenever a price override changes, so cached price tables are rebuilt at once.
    pricing_version = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class Team(TenantOwned):
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    cost_center = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="team_unique_slug_per_tenant")
        ]
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class Membership(TenantOwned):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta(TenantOwned.Meta):
        constraints = [
            models.UniqueConstraint(fields=["tenant", "user"], name="membership_unique_per_tenant")
        ]


class Scope(models.TextChoices):
    INGEST = "ingest", "Ingest"
    READ = "read", "Read"


class ApiKey(TenantOwned):
    """A service credential. Only a SHA-256 of the secret is stored; the prefix finds the row."""

    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.RESTRICT)
    name = models.CharField(max_length=200, blank=True, default="")
    scope = models.CharField(max_length=16, choices=Scope.choices, default=Scope.INGEST)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    rate_limit_per_minute = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix} ({self.name or self.scope})"
