"""Celery tasks of the rollups alone; the run after new events is `pipeline.tasks`."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from rollups import services, tags


@shared_task(acks_late=True, reject_on_worker_lost=True)
def roll_up_everything_pending() -> int:
    """Beat safety net: whatever a lost task or a down broker left behind.

    Each tenant on its own: one whose run fails is logged, counted and named in /readyz
    (`services.roll_up_isolated`), and the sweep goes on to the next.
    """
    return sum(
        services.roll_up_isolated(tenant_id) for tenant_id in services.tenants_with_pending()
    )


@shared_task(acks_late=True, reject_on_worker_lost=True)
def delete_expired_events() -> list[str]:
    """Beat: drop the raw-event months wholly past the retention (whole partitions)."""
    return services.delete_expired_events(settings.RAW_EVENT_RETENTION_DAYS)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def make_event_partitions() -> list[str]:
    """Beat: this month's raw-event partition and the next two exist before they are needed."""
    return services.make_event_partitions()


@shared_task(acks_late=True, reject_on_worker_lost=True)
def refresh_consumer_windows() -> int:
    """Beat: at the turn of a day, every tenant's top-consumer ranges move on, busy or idle."""
    tenant_ids = services.all_tenant_ids()
    for tenant_id in tenant_ids:
        services.refresh_consumer_windows(tenant_id)
    return len(tenant_ids)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def reroll_tag_dimensions(tenant_id: int, keys: list[str]) -> int:
    """Newly chosen tag keys: their rollups rebuilt from the retained raw events."""
    return tags.reroll(tenant_id, keys)
