from django.urls import path

from prices import views

urlpatterns = [
    path("prices/", views.prices_page, name="prices"),
    path("prices/reprice/", views.reprice_preview, name="reprice-preview"),
    path(
        "prices/reprice/preview/<int:preview_id>/",
        views.reprice_preview_show,
        name="reprice-preview-show",
    ),
    path("prices/reprice/apply/", views.reprice_apply, name="reprice-apply"),
    path("prices/reprice/<int:run_id>/", views.reprice_run, name="reprice-run"),
]
