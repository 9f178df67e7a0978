"""The WSGI fast path for the two ingest URLs: answered before Django's request machinery.

At ingest rates the per-request cost of Django's middleware, URL resolving and DRF's
request, authentication, permission, throttle and response objects was most of the CPU of
a single-event POST. `POST /api/v1/events` and `POST /api/v1/metrics/llm-costs` are served
here by the same `ingest.endpoint` functions the Django views call; every other request,
and any ingest request whose Host Django would have to judge, goes to Django unchanged.

What Django would still do for these requests is done here: database connections are
recycled per CONN_MAX_AGE and broken ones closed before and after each request, unknown hosts
are left to Django's ALLOWED_HOSTS check, plain http is left to Django to redirect when the
deployment is HTTPS-only, and the headers its security middleware adds to every answer are
added (HSTS on HTTPS answers). Django's `request_started` and `request_finished` signals are not
sent: sending the pair cost 66 µs of CPU per request here, about a seventh of a single-event
POST, while their receivers' useful work for this path (`close_old_connections`, and
`reset_queries` when DEBUG keeps a query log) costs 7 µs when called directly. The others
have nothing to do here: the caches have nothing to close, and this path sets no URLconf.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db import close_old_connections, reset_queries
from django.http.request import split_domain_port, validate_host

from ingest.endpoint import Answer, answer, post_events, post_llm_costs

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Endpoint = Callable[[str, int | None, Callable[[int], bytes]], Answer]
ROUTES: dict[str, Endpoint] = {
    "/api/v1/events": post_events,
    "/api/v1/metrics/llm-costs": post_llm_costs,
}
# What SecurityMiddleware and XFrameOptionsMiddleware add to Django's answers (settings'
# defaults, which Costboard keeps).
SECURITY_HEADERS = (
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
request_log = logging.getLogger("django.request")


def _recycle_connections() -> None:
    if settings.DEBUG:
        reset_queries()
    close_old_connections()


class IngestFastPath:
    """Wraps Django's WSGI application; serves the ingest URLs itself."""

    def __init__(self, django_app: WSGIApp) -> None:
        self.django_app = django_app
        self._hosts: dict[str, bool] = {}

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        endpoint = ROUTES.get(environ.get("PATH_INFO", ""))
        if (
            endpoint is None
            or environ.get("REQUEST_METHOD") != "POST"
            or not self._host_allowed(environ.get("HTTP_HOST"))
            or (settings.SECURE_SSL_REDIRECT and not _is_secure(environ))
        ):
            return self.django_app(environ, start_response)
        _recycle_connections()
        try:
            result = endpoint(
                environ.get("HTTP_AUTHORIZATION", ""),
                _content_length(environ),
                environ["wsgi.input"].read,
            )
        except Exception:
            # A bug, not a client's fault: logged as Django logs a 500, answered as DRF does.
            request_log.exception("Internal Server Error: %s", environ.get("PATH_INFO"))
            result = answer(500, {"detail": "A server error occurred."})
        finally:
            # Here, not from the body's close(): granian never calls close() on a list body,
            # and the answer is complete anyway (the body is one bytes object).
            _recycle_connections()
        start_response(_status_line(result.status), _headers(result, _is_secure(environ)))
        return [result.body]

    def _host_allowed(self, host: str | None) -> bool:
        """True when Django would accept this Host; anything else is left to Django to refuse."""
        if host is None or settings.USE_X_FORWARDED_HOST:
            return False
        allowed = self._hosts.get(host)
        if allowed is None:
            domain, _port = split_domain_port(host)
            allowed = bool(domain) and validate_host(domain, settings.ALLOWED_HOSTS)
            if len(self._hosts) < 64:  # clients choose Host: keep this small
                self._hosts[host] = allowed
        return allowed


def _content_length(environ: dict[str, Any]) -> int | None:
    try:
        return int(environ["CONTENT_LENGTH"])
    except (KeyError, ValueError):
        return None


_STATUS_LINES: dict[int, str] = {}


def _status_line(status: int) -> str:
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = f"{status} {HTTPStatus(status).phrase}"
    return line


def _is_secure(environ: dict[str, Any]) -> bool:
    """As `HttpRequest.is_secure()`: the trusted proxy's header when one is configured and
    present (its first value), else the server's own scheme."""
    if settings.SECURE_PROXY_SSL_HEADER:
        name, secure = settings.SECURE_PROXY_SSL_HEADER
        value = environ.get(name)
        if value is not None:
            return bool(value.split(",", 1)[0].strip() == secure)
    return bool(environ.get("wsgi.url_scheme") == "https")


def _hsts() -> str:
    """The Strict-Transport-Security value SecurityMiddleware sends ('' when it sends none)."""
    if not settings.SECURE_HSTS_SECONDS:
        return ""
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    value += "; includeSubDomains" if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS else ""
    return value + ("; preload" if settings.SECURE_HSTS_PRELOAD else "")


def _headers(result: Answer, secure: bool) -> list[tuple[str, str]]:
    hsts = _hsts() if secure else ""
    return [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(result.body))),
        *SECURITY_HEADERS,
        *([("Strict-Transport-Security", hsts)] if hsts else []),
        *result.headers,
    ]
