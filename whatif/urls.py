from django.urls import path

from whatif import views

urlpatterns = [path("whatif/", views.whatif, name="whatif")]
