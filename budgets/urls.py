from django.urls import path

from budgets import views

urlpatterns = [
    path("budgets/", views.budgets_page, name="budgets"),
    path("budgets/new/", views.budget_edit, name="budget-new"),
    path("budgets/<int:pk>/", views.budget_edit, name="budget-edit"),
    path("budgets/<int:pk>/delete/", views.budget_delete, name="budget-delete"),
]
