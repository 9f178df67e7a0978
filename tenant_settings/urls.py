from django.urls import path

from tenant_settings import audit_log, model_families, views

urlpatterns = [
    path("settings/", views.settings_page, name="settings"),
    path("settings/audit/", audit_log.audit_page, name="audit"),
    path("settings/model-families/", model_families.model_families, name="model-families"),
    path("settings/audit.csv", audit_log.audit_csv_download, name="audit-csv"),
]
