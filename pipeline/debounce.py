"""The shared flag that says a tenant's rollup is scheduled and has not started yet."""

from __future__ import annotations

from django.core.cache import cache


def scheduled_flag(tenant_id: int) -> str:
    return f"costboard:rollup-scheduled:{tenant_id}"


def clear_schedule(tenant_id: int) -> None:
    """Called as a rollup starts, so events arriving during the run schedule the next one."""
    cache.delete(scheduled_flag(tenant_id))
