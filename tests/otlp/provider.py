"""A fake LLM provider on 127.0.0.1: OpenAI's chat completions and Anthropic's messages API.

The real SDKs call it as they would call the provider, so instrumentations see genuine SDK
response objects. Each answer reports the token usage the test chose (`Usage`), so the span
an instrumentation exports can be checked field by field.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Usage:
    """What the provider reports, in OpenAI's sense: `input` counts the cached tokens too."""

    input: int
    output: int
    cache_read: int = 0
    cache_write: int = 0


def openai_usage(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input,
        "completion_tokens": usage.output,
        "total_tokens": usage.input + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.cache_read},
    }


def anthropic_usage(usage: Usage) -> dict[str, Any]:
    # Anthropic's `input_tokens` leaves the cache reads and writes out.
    return {
        "input_tokens": usage.input - usage.cache_read - usage.cache_write,
        "cache_read_input_tokens": usage.cache_read,
        "cache_creation_input_tokens": usage.cache_write,
        "output_tokens": usage.output,
    }


def chat_completion(model: str, usage: Usage, n: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-costboard-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello!", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": openai_usage(usage),
    }


def chat_chunks(model: str, usage: Usage, n: int) -> list[dict[str, Any]]:
    """A streamed completion: two content chunks, then the usage chunk (include_usage)."""
    base: dict[str, Any] = {"id": f"chatcmpl-costboard-{n}", "object": "chat.completion.chunk"}
    base.update(model=model, created=int(time.time()))
    deltas = [
        {"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None},
        {"index": 0, "delta": {"content": "lo!"}, "finish_reason": "stop"},
    ]
    chunks = [{**base, "choices": [delta]} for delta in deltas]
    chunks.append({**base, "choices": [], "usage": openai_usage(usage)})
    return chunks


def anthropic_message(model: str, usage: Usage, n: int) -> dict[str, Any]:
    return {
        "id": f"msg_costboard_{n}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


@dataclass
class Provider:
    url: str
    model: str
    usage: Usage
    requests: int = 0


@contextmanager
def fake_provider(model: str, usage: Usage) -> Iterator[Provider]:
    """Serve `model` reporting `usage` on every call until the block ends."""
    provider = Provider(url="", model=model, usage=usage)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            with lock:
                provider.requests += 1
                n = provider.requests  # every answer has an id of its own, as a provider's
            model, usage = provider.model, provider.usage
            if self.path.endswith("/messages"):
                self._json(anthropic_message(model, usage, n))
            elif request.get("stream"):
                self._stream(chat_chunks(model, usage, n))
            else:
                self._json(chat_completion(model, usage, n))

        def _json(self, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, chunks: list[dict[str, Any]]) -> None:
            events = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks] + ["data: [DONE]\n\n"]
            data = "".join(events).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
