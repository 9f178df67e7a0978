from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from budgets.api import BudgetStatusView
from costboard import views
from ingest.views import EventsView, LlmCostsView
from metrics.views import metrics
from otlp.views import MetricsView, TracesView
from whatif.views import WhatIfView

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", metrics, name="metrics"),
    path("api/v1/events", EventsView.as_view(), name="ingest-events"),
    path("api/v1/metrics/llm-costs", LlmCostsView.as_view(), name="ingest-llm-costs"),
    # OTLP/HTTP's standard path, so an exporter needs only the base URL as its endpoint.
    path("v1/traces", TracesView.as_view(), name="otlp-traces"),
    # Accepted and ignored: the spans already carry the usage (otlp.views.MetricsView).
    path("v1/metrics", MetricsView.as_view(), name="otlp-metrics"),
    path("api/v1/", include("rollups.urls")),
    path("api/v1/whatif", WhatIfView.as_view(), name="whatif-api"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/budgets/status", BudgetStatusView.as_view(), name="budget-status"),
    path("", include("budgets.urls")),
    path("", include("anomalies.urls")),
    path("", include("billing.urls")),
    path("", include("prices.urls")),
    path("", include("members.urls")),
    path("", include("tenant_settings.urls")),
    path("", include("whatif.urls")),
    path("", include("dashboard.urls")),
]
