from django.urls import path

from billing import views

urlpatterns = [
    path("chargeback/", views.chargeback, name="chargeback"),
    path("chargeback/allocation/", views.allocation, name="chargeback-allocation"),
    path("invoices/", views.invoices, name="invoices"),
    path("invoices/generate/", views.generate, name="invoices-generate"),
    path("invoices/finalize/", views.finalize_month, name="invoices-finalize-month"),
    path("invoices/<int:pk>/", views.invoice, name="invoice"),
    path("invoices/<int:pk>/finalize/", views.finalize, name="invoice-finalize"),
    path("invoices/<int:pk>/csv/", views.invoice_csv, name="invoice-csv"),
    path("invoices/month/<str:month>/csv/", views.month_csv, name="invoices-month-csv"),
    path("invoices/month/<str:month>/focus/", views.focus_csv, name="invoices-focus-csv"),
]
