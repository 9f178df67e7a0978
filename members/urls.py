from django.contrib.auth import views as auth_views
from django.urls import path

from members import views

urlpatterns = [
    path("settings/members/", views.members_page, name="members"),
    path(
        "accounts/invite/<uidb64>/<token>/",
        views.AcceptInviteView.as_view(),
        name="accept-invite",
    ),
    path("accounts/password/change/", views.password_change, name="password_change"),
    path(
        "accounts/password/change/done/",
        views.password_change_done,
        name="password_change_done",
    ),
    # Django's own reset-by-email views; the templates are in templates/registration/.
    path("accounts/password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
]
