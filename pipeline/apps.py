from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "pipeline"
    verbose_name = "What happens after events are stored"

    def ready(self) -> None:
        from pipeline import receivers  # noqa: F401 - connects the receivers, once
