"""What reacts to the apps' announcements (`core.signals`): the whole list."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from core.signals import events_stored
from pipeline.scheduling import schedule_rollup


@receiver(events_stored, dispatch_uid="pipeline.schedule_rollup")
def on_events_stored(sender: Any, tenant_id: int, **kwargs: Any) -> None:
    schedule_rollup(tenant_id)
