from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants, teams and API keys"

    def ready(self) -> None:
        # drf-spectacular finds the API key's security scheme once its extension is imported.
        from tenants import schema  # noqa: F401
