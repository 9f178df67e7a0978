"""Misbehaving receivers on 127.0.0.1: one that answers forever, one that never answers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CLAIMED_BYTES = 1 << 30  # announces a 1 GiB answer


@dataclass
class Endless:
    url: str = ""
    written: int = 0
    done: threading.Event = field(default_factory=threading.Event)


@contextmanager
def endless_answer(stall: bool = False) -> Iterator[Endless]:
    """Answers 200 with a 1 GiB body and writes it until the client hangs up; counts bytes.
    With `stall`, writes 100 bytes and then nothing until the client hangs up."""
    endless = Endless()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.send_response(200)
            self.send_header("Content-Length", str(CLAIMED_BYTES))
            self.end_headers()
            chunk = b"x" * (100 if stall else 65536)
            try:
                while endless.written < CLAIMED_BYTES:
                    self.wfile.write(chunk)
                    endless.written += len(chunk)
                    if stall:
                        self.wfile.flush()
                        self.rfile.read(1)  # returns once the client has closed
            except OSError:
                pass  # the client closed the connection: what the test wants
            finally:
                endless.done.set()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endless.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield endless
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as listener:
        yield listener.getsockname()[1]


def closed_port() -> int:
    """A port nobody listens on: connecting to it is refused."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])
