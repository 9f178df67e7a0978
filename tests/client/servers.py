"""Real HTTP servers on 127.0.0.1 for the client tests: a front that fails on purpose.

`Front` answers the first requests badly, following a script (503, 429, dropped connections,
answers lost after the upstream stored the events), then forwards to a live Costboard, or,
without one, answers like Costboard itself and keeps what it was sent.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# What the front does with one request.
FORWARD = "forward"  # pass it on (or, with no upstream, accept it) and answer
UNAVAILABLE = "503"  # answer 503 with Retry-After: 0, pass nothing on
RATE_LIMITED = "429"  # answer 429 with Retry-After: 0, pass nothing on
DROP = "drop"  # close the connection without answering, pass nothing on
LOSE_ANSWER = "lose-answer"  # pass it on, then close without answering: stored, unacknowledged
UNAUTHORIZED = "401"


class Front:
    def __init__(self, upstream: str | None = None, script: list[str] | None = None) -> None:
        self.upstream = urlsplit(upstream) if upstream else None
        self.script = list(script or [])
        self.bodies: list[dict[str, Any]] = []  # every body received, in order
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()

    @property
    def events(self) -> list[dict[str, Any]]:
        return [e for body in self.bodies for e in body.get("events", [body])]

    def next_step(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else FORWARD

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        with self.lock:
            self.bodies.append(json.loads(body))
            self.headers.append(dict(handler.headers.items()))
        step = self.next_step()
        if step == DROP:
            return
        if step in (UNAVAILABLE, RATE_LIMITED, UNAUTHORIZED):
            answer(handler, int(step), {"detail": "scripted failure"}, {"Retry-After": "0"})
            return
        status, headers, data = self.forward(handler, body)
        if step == LOSE_ANSWER:
            return
        answer(handler, status, data, headers)

    def forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict, Any]:
        if self.upstream is None:
            events = json.loads(body).get("events", [None])
            return 202, {}, {"accepted": len(events), "duplicates": 0, "rejected": []}
        host, port = self.upstream.hostname or "127.0.0.1", self.upstream.port
        conn = http.client.HTTPConnection(host, port, timeout=30)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "host"}
            conn.request("POST", handler.path, body=body, headers=headers)
            response = conn.getresponse()
            data = json.loads(response.read())
            kept = {k: v for k, v in response.getheaders() if k.lower() == "retry-after"}
            return response.status, kept, data
        finally:
            conn.close()


def answer(handler: BaseHTTPRequestHandler, status: int, data: Any, headers: dict) -> None:
    payload = json.dumps(data).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(payload)


@contextmanager
def serve(front: Front) -> Iterator[str]:
    """Run `front` on a free port of 127.0.0.1; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            front.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    class Server(ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client that gave up on an answer is what some tests are about

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> str:
    """A base URL nothing listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def silent_server() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
