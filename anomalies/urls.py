from django.urls import path

from anomalies import views

urlpatterns = [
    path("anomalies/", views.anomalies_page, name="anomalies"),
    path("anomalies/thresholds/", views.thresholds, name="anomaly-thresholds"),
    path("anomalies/<int:pk>/", views.anomaly_detail, name="anomaly"),
    path(
        "anomalies/<int:pk>/acknowledge/",
        views.anomaly_action,
        {"action": "acknowledge"},
        name="anomaly-acknowledge",
    ),
    path(
        "anomalies/<int:pk>/resolve/",
        views.anomaly_action,
        {"action": "resolve"},
        name="anomaly-resolve",
    ),
]
