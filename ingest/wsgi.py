"""The WSGI fast path for the two ingest URLs: answered before Django's request machinery.

At ingest rates the per-request cost of Django's middleware, URL resolving and DRF's
request, authentication, permission, throttle and response objects was most of the CPU of
a single-event POST. `POST /api/v1/events` and `POST /api/v1/metrics/llm-costs` are served
here by the same `ingest.endpoint` functions the Django views call; every other request,
and any ingest request whose Host Django would have to judge, goes to Django unchanged.

What Django would still do for these requests is done here: `request_started` and
`request_finished` are sent (database connections are reset and recycled per CONN_MAX_AGE,
broken ones closed), unknown hosts are left to Django's ALLOWED_HOSTS check, and the headers
its security middleware adds to every answer are added.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core import signals
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
        ):
            return self.django_app(environ, start_response)
        signals.request_started.send(sender=self.__class__, environ=environ)
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
            # Sent here, not from the body's close(): granian never calls close() on a list
            # body, and the answer is complete anyway (the body is one bytes object).
            signals.request_finished.send(sender=self.__class__)
        start_response(_status_line(result.status), _headers(result))
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


def _headers(result: Answer) -> list[tuple[str, str]]:
    return [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(result.body))),
        *SECURITY_HEADERS,
        *result.headers,
    ]
