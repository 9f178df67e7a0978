"""A real HTTP server on 127.0.0.1 that records what it receives (Slack, PagerDuty, webhooks)."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Capture:
    url: str
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


@contextmanager
def capture_server(
    status: int = 200, headers: dict[str, str] | None = None, certfile: str | None = None
) -> Iterator[Capture]:
    """Answers every POST with `status` and `headers` (a Location for a redirect); over TLS
    with `certfile` (certificate and key in one PEM file)."""
    capture = Capture(url="", headers=headers or {})

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            capture.requests.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(capture.status)
            for name, value in capture.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    capture.status = status
    scheme = "http"
    if certfile:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(certfile)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    capture.url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield capture
    finally:
        server.shutdown()
        server.server_close()
