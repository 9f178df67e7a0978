from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, REGISTRY, generate_latest

from metrics.collector import exposition


def _authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    if not token:
        return True  # METRICS_TOKEN unset: open, e.g. behind a private network
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # Constant-time comparison: response timing must not reveal how much of a guess matched.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text: django-prometheus's per-process metrics, then the costboard_* families."""
    if not _authorized(request):
        response = HttpResponse("a valid METRICS_TOKEN bearer token is required\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # The classic text format 0.0.4: what Prometheus 2.x and promtool read (no UTF-8 names).
    body = generate_latest(REGISTRY) + exposition()
    return HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
