from django.urls import path

from dashboard import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("teams/", views.teams, name="teams"),
    path("teams/<slug:slug>/", views.team_detail, name="team"),
    path("features/", views.features, name="features"),
    # Any name, slashes included (dashboard.feature_pages builds these paths).
    path("features/<path:name>/", views.feature_detail, name="feature"),
    path("models/", views.models, name="models"),
    path("endpoints/", views.endpoints, name="endpoints"),
    path("statuses/", views.statuses, name="statuses"),
    path("tags/<str:key>/", views.tag, name="tag"),
    path("consumers/", views.consumers, name="consumers"),
    path("tenant/switch/", views.switch, name="switch-tenant"),
]
