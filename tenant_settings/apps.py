from django.apps import AppConfig


class TenantSettingsConfig(AppConfig):
    name = "tenant_settings"
    verbose_name = "Tenant settings page"
