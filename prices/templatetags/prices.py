"""Filters of the prices pages."""

from __future__ import annotations

from decimal import Decimal

from django import template

from core.money import decimal_text
from tenants.labels import TeamLabels

register = template.Library()


@register.filter
def exact(value: Decimal | None) -> str:
    """Every decimal of an amount, never in exponent notation: what finance reconciles."""
    return "—" if value is None else decimal_text(value)


@register.filter
def percent_of(done: int, total: int) -> int:
    return 100 if not total else min(100, done * 100 // total)


@register.filter
def team_label(teams: TeamLabels, team_pk: int) -> str:
    return teams.label(team_pk)
