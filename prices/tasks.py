"""Celery tasks: they take ids and call services."""

from __future__ import annotations

from celery import shared_task

from prices import services
from rollups.services import all_tenant_ids


@shared_task(acks_late=True, reject_on_worker_lost=True)
def reprice(tenant_id: int, run_id: int) -> str:
    """Apply a re-price the page recorded; returns its status."""
    return str(services.run_reprice(tenant_id, run_id).status)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def preview(tenant_id: int, preview_id: int) -> str:
    """Compute a re-price preview the page asked for; returns its status."""
    return str(services.run_preview(tenant_id, preview_id).status)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def prune_previews() -> int:
    """Beat: every tenant's re-price previews past their keep that no run applied."""
    return sum(services.prune_previews(pk) for pk in all_tenant_ids())
