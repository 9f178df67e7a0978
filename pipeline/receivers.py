"""What reacts to the apps' announcements (`core.signals`): the whole list."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from core.signals import events_stored
from pipeline.scheduling import schedule_rollup
from prices.services import record_command_run
from rollups import repricing


@receiver(events_stored, dispatch_uid="pipeline.schedule_rollup")
def on_events_stored(sender: Any, tenant_id: int, **kwargs: Any) -> None:
    schedule_rollup(tenant_id)


# `rollup --since` re-prices on the command line: recorded as a run, as the page's apply is.
if record_command_run not in repricing.RECORDERS:
    repricing.RECORDERS.append(record_command_run)
