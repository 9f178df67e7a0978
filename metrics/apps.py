from __future__ import annotations

from django.apps import AppConfig


class MetricsConfig(AppConfig):
    name = "metrics"
    verbose_name = "Prometheus metrics"

    def ready(self) -> None:
        from metrics.collector import register
        from metrics.conf import metrics_settings

        metrics_settings()  # a bad METRICS_* setting stops the process at start, not at scrape
        register()
