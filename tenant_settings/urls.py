from django.urls import path

from tenant_settings import views

urlpatterns = [path("settings/", views.settings_page, name="settings")]
