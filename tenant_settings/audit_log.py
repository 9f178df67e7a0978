"""`/settings/audit/`: a tenant admin reads (never edits) the audit log, and downloads it."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from audit.csv_export import audit_csv
from audit.forms import AuditFilterForm
from audit.models import AuditEntryQuerySet
from audit.selectors import Filters, entries
from core import replica
from core.pages import member_view
from tenants.context import TenantContext
from tenants.models import Role

PAGE_SIZE = 50


def _filtered(request: HttpRequest, ctx: TenantContext) -> tuple[AuditFilterForm, Filters]:
    form = AuditFilterForm(request.GET)
    valid = form.is_valid()  # an invalid filter is shown with its error, and not applied
    return form, form.filters(ctx.tenant.timezone) if valid else Filters()


@require_safe  # read-only: nothing on this page changes an entry
@member_view(Role.ADMIN)
@replica.read_view
def audit_page(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form, filters = _filtered(request, ctx)
    page = Paginator(entries(ctx.tenant, filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"ctx": ctx, "form": form, "page": page, "query": query.urlencode()}
    return render(request, "tenant_settings/audit.html", context)


# member_view is typed for HttpResponse; a streamed download is a StreamingHttpResponse.
@require_safe
@member_view(Role.ADMIN)  # type: ignore[arg-type]
def audit_csv_download(request: HttpRequest, ctx: TenantContext) -> HttpResponse:
    form, filters = _filtered(request, ctx)
    if form.errors:
        return HttpResponse(_errors(form), status=400, content_type="text/plain; charset=utf-8")
    rows: AuditEntryQuerySet = entries(ctx.tenant, filters)
    # The rows are read while the body streams, after the view returned: from the replica then.
    body = replica.streamed(request, audit_csv(rows))
    response = StreamingHttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="audit-{ctx.tenant.slug}.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    return response  # type: ignore[return-value]


def _errors(form: AuditFilterForm) -> str:
    fields = form.errors.get_json_data()
    return "\n".join(
        f"{name}: {' '.join(e['message'] for e in errs)}" for name, errs in fields.items()
    )
