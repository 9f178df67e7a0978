from django.urls import path

from rollups.views import UsageView

urlpatterns = [path("usage", UsageView.as_view(), name="usage")]
