from django.urls import path

from tenants import views

urlpatterns = [path("settings/", views.settings_page, name="settings")]
