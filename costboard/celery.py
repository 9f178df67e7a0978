import os

from celery import Celery
from celery.schedules import crontab
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costboard.settings")

app = Celery("costboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# One beat sends at a time, even if several nodes start one (costboard/beat.py).
app.conf.beat_scheduler = "costboard.beat:SingleBeatScheduler"
app.conf.beat_schedule = {
    "roll-up-pending": {"task": "rollups.tasks.roll_up_everything_pending", "schedule": 30.0},
    "refresh-metrics": {"task": "metrics.tasks.refresh_metrics", "schedule": 5.0},
    "refresh-consumer-windows": {
        "task": "rollups.tasks.refresh_consumer_windows",
        "schedule": 60.0,
    },
    "evaluate-budgets": {"task": "budgets.tasks.evaluate_all_budgets", "schedule": 300.0},
    # Hourly: each tenant's month ends at a different UTC hour (its time zone); idempotent.
    "close-billing-months": {
        "task": "billing.tasks.close_finished_months",
        "schedule": crontab(minute=7),
    },
    "detect-anomalies": {
        "task": "anomalies.tasks.detect_all_anomalies",
        "schedule": crontab(minute=2),
    },
    # Partitions ahead (this month and the next two); ingest also makes one on demand.
    "make-event-partitions": {
        "task": "rollups.tasks.make_event_partitions",
        "schedule": crontab(minute=11, hour="*/6"),
    },
    # Re-price previews nobody applied, a month after they were asked for.
    "prune-reprice-previews": {
        "task": "prices.tasks.prune_previews",
        "schedule": crontab(minute=23, hour=4),
    },
    # Whole months past the retention: detach and drop their partitions.
    "delete-expired-events": {
        "task": "rollups.tasks.delete_expired_events",
        "schedule": crontab(minute=17, hour=3),
    },
}


@worker_process_init.connect
def _start_catalog_updates(**_: object) -> None:
    """Each pool process runs genai-prices' updater when CATALOG_AUTO_UPDATE is on (a thread
    started before the fork would not survive it)."""
    from pricing.catalog_updates import start_catalog_updates  # needs Django set up first

    start_catalog_updates()
