"""`GET /metrics`: closed unless the request proves who it is for.

- `Authorization: Bearer $METRICS_TOKEN`: the operator; every tenant's series plus
  django-prometheus's per-process request and database metrics.
- `Authorization: Bearer <a tenant's read key>`: that tenant's costboard_* series only (the
  server's own metrics describe the operator's machines, not the tenant's spend).
- no Authorization header: the operator's scrape only when METRICS_PUBLIC is set (a private
  network), else 401.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, generate_latest

from metrics.collector import exposition, tenant_exposition
from tenants.auth import bearer_token, live_api_key
from tenants.models import Scope

NEEDS_CREDENTIALS = (
    "/metrics needs Authorization: Bearer with the METRICS_TOKEN or a tenant's read API key\n"
)
BAD_CREDENTIALS = "unknown or revoked token: neither the METRICS_TOKEN nor a live API key\n"
WRONG_SCOPE = f"this API key's scope is not {Scope.READ.value!r}: /metrics needs a read key\n"


def _is_metrics_token(token: str) -> bool:
    expected = settings.METRICS_TOKEN
    # Constant-time comparison: response timing must not reveal how much of a guess matched.
    return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())


def _refused(status: int, detail: str) -> HttpResponse:
    response = HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def _text(body: bytes) -> HttpResponse:
    # The classic text format 0.0.4: what Prometheus 2.x and promtool read (no UTF-8 names).
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)


def _operator_scrape() -> HttpResponse:
    """django-prometheus's per-process metrics, then every tenant's costboard_* families."""
    return _text(generate_latest(REGISTRY) + exposition())


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    header = request.headers.get("Authorization", "")
    if not header:
        return _operator_scrape() if settings.METRICS_PUBLIC else _refused(401, NEEDS_CREDENTIALS)
    token = bearer_token(header)
    if not token:
        return _refused(401, NEEDS_CREDENTIALS)
    if _is_metrics_token(token):
        return _operator_scrape()
    key = live_api_key(token)
    if key is None:
        return _refused(401, BAD_CREDENTIALS)
    if key.scope != Scope.READ:
        return _refused(403, WRONG_SCOPE)
    return _text(tenant_exposition(key.tenant_id))
