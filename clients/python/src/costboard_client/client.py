"""The Costboard client: record usage in memory, deliver it in batches from a daemon thread.

Everything the calling application touches (`record`, `flush`, `stats`) returns promptly and
never raises: a monitor that is down, slow or misconfigured must not break or slow the app.
"""

from __future__ import annotations

import atexit
import http.client
import json
import logging
import os
import random
import ssl
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from costboard_client.providers import Usage, anthropic_usage, openai_usage

log = logging.getLogger("costboard_client")

EVENTS_PATH = "/api/v1/events"
MAX_BATCH = 1000  # the server's limit of events per request
MAX_BODY_BYTES = 4 * 1024 * 1024  # below the server's 5 MiB, with room to spare
MAX_RETRY_AFTER = 600.0
USER_AGENT = "costboard-client-python/0.1.0"
COUNTERS = ("recorded", "sent", "duplicates", "rejected", "dropped", "failed", "retries")


class CostboardClient:
    """Queue usage events and send them to `POST /api/v1/events` in the background.

    The queue is bounded: when it is full, new events are dropped and counted (`stats()`),
    never waited for. Each event gets its id here, so a batch resent after a lost answer is
    counted once by the server.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        environment: str | None = None,
        feature: str | None = None,
        team: str | None = None,
        tags: Mapping[str, str] | None = None,
        max_queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        timeout: float = 5.0,
        max_retries: int = 8,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        flush_at_exit: bool = True,
        exit_timeout: float = 5.0,
    ) -> None:
        self.api_key = api_key or os.environ.get("COSTBOARD_API_KEY", "")
        self.base_url = base_url or os.environ.get("COSTBOARD_URL", "http://127.0.0.1:8000")
        self.defaults = _defaults(environment, feature, team, tags)
        self.max_queue_size = max(1, max_queue_size)
        self.batch_size = min(max(1, batch_size), MAX_BATCH)
        self.flush_interval = max(0.0, flush_interval)
        self.timeout = timeout
        self.max_retries = max(0, max_retries)
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.exit_timeout = exit_timeout
        self._target = _Target.parse(self.base_url)  # None when unusable: drop, never raise
        self._closed = False
        self._reset_process_state()
        if not self.api_key:
            log.warning("costboard: no API key (COSTBOARD_API_KEY); usage will be dropped")
        if flush_at_exit:
            atexit.register(self._at_exit)
        _CLIENTS.add(self)

    # -- what the application calls -------------------------------------------------------

    def record(
        self,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int = 0,
        *,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        feature: str | None = None,
        endpoint: str | None = None,
        user_id: str | None = None,
        team: str | None = None,
        environment: str | None = None,
        latency_ms: float | None = None,
        status_code: int | None = None,
        cost_usd: Decimal | float | str | None = None,
        tags: Mapping[str, str] | None = None,
        timestamp: datetime | float | str | None = None,
        event_id: str | None = None,
    ) -> str | None:
        """Queue one LLM call; returns its event id, or None when it was dropped.

        `input_tokens` counts every input token, cached ones included; `cache_read_tokens`
        and `cache_write_tokens` are parts of it.
        """
        try:
            event = _event(
                self.defaults,
                provider=provider,
                model=model,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read_tokens,
                cache_write_tokens=cache_write_tokens,
                feature=feature,
                endpoint=endpoint,
                user_id=user_id,
                team=team,
                environment=environment,
                latency_ms=latency_ms,
                status_code=status_code,
                cost_usd=cost_usd,
                tags=tags,
                timestamp=timestamp,
                event_id=event_id,
            )
            return event["event_id"] if self._enqueue(event) else None
        except Exception as exc:  # a bad argument must not surface as an error in the app
            log.warning("costboard: usage not recorded: %s", exc)
            self._add("dropped", 1)
            return None

    def record_usage(self, usage: Usage | None, **fields: Any) -> str | None:
        """Queue usage read from a provider's response (see `record_openai`)."""
        if usage is None:
            log.warning("costboard: the response carries no token usage; nothing recorded")
            self._add("dropped", 1)
            return None
        values = {**usage.as_fields(), **fields}
        try:
            return self.record(**values)
        except TypeError as exc:  # an unknown keyword: report it, never raise into the app
            log.warning("costboard: usage not recorded: %s", exc)
            self._add("dropped", 1)
            return None

    def record_openai(self, response: Any, **fields: Any) -> str | None:
        """Record an OpenAI chat completion, Responses API response or embeddings response.

        Keyword arguments are `record`'s (`feature`, `user_id`, `latency_ms`, ...); pass
        `provider="azure"` for Azure OpenAI.
        """
        try:
            usage = openai_usage(response)
        except Exception as exc:
            log.warning("costboard: could not read OpenAI usage: %s", exc)
            usage = None
        return self.record_usage(usage, **fields)

    def record_anthropic(self, message: Any, **fields: Any) -> str | None:
        """Record an Anthropic message; cache reads and writes count as input tokens too."""
        try:
            usage = anthropic_usage(message)
        except Exception as exc:
            log.warning("costboard: could not read Anthropic usage: %s", exc)
            usage = None
        return self.record_usage(usage, **fields)

    def flush(self, timeout: float = 5.0) -> bool:
        """Send what is queued now; True when all of it was settled within `timeout` seconds."""
        try:
            return self._flush(timeout)
        except Exception as exc:
            log.warning("costboard: flush failed: %s", exc)
            return False

    def close(self, timeout: float = 5.0) -> bool:
        """Flush, then stop: later records are dropped. Idempotent."""
        flushed = self.flush(timeout) if not self._closed else True
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._abort.set()  # a retry still waiting gives up now, so the thread ends
        atexit.unregister(self._at_exit)
        return flushed

    def stats(self) -> dict[str, int]:
        """Counts since the client started: recorded, sent, duplicates, rejected, dropped,
        failed (given up after retries or refused, e.g. a bad key), retries, and queued now."""
        with self._cond:
            return {**self._counts, "queued": len(self._buffer) + self._in_flight}

    # -- queue ------------------------------------------------------------------------------

    def _reset_process_state(self) -> None:
        # Called at start and in a forked child: a child must not share the parent's lock,
        # thread or socket, nor resend events the parent will send; its counts are its own.
        self._cond = threading.Condition()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._buffer: deque[dict[str, Any]] = deque()
        self._in_flight = 0
        self._flushers = 0
        self._thread: threading.Thread | None = None
        self._abort = threading.Event()
        self._conn: http.client.HTTPConnection | None = None

    def _enqueue(self, event: dict[str, Any]) -> bool:
        if not self.api_key or self._target is None:
            self._add("dropped", 1)
            return False
        with self._cond:
            if self._closed or len(self._buffer) >= self.max_queue_size:
                self._counts["dropped"] += 1
                return False
            self._buffer.append(event)
            self._counts["recorded"] += 1
            # Wake the sender only when it has something new to do, not on every event.
            if len(self._buffer) == 1 or len(self._buffer) >= self.batch_size:
                self._cond.notify_all()
            self._ensure_thread()
        return True

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="costboard-client", daemon=True)
            self._thread.start()

    def _flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            if not self._buffer and not self._in_flight:
                return True
            self._flushers += 1
            self._ensure_thread()
            self._cond.notify_all()
            try:
                while self._buffer or self._in_flight:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(remaining)
                return True
            finally:
                self._flushers -= 1

    def _take_batch(self) -> list[dict[str, Any]] | None:
        with self._cond:
            while not self._buffer:
                if self._closed:
                    return None
                self._cond.wait()
            # Linger a moment so a quiet app sends one request per interval, not per call.
            deadline = time.monotonic() + self.flush_interval
            while len(self._buffer) < self.batch_size and not self._flushers and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            size = min(self.batch_size, len(self._buffer))
            batch = [self._buffer.popleft() for _ in range(size)]
            self._in_flight = len(batch)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            try:
                self._deliver_batch(batch)
            finally:
                with self._cond:
                    self._in_flight = 0
                    self._cond.notify_all()

    def _deliver_batch(self, batch: list[dict[str, Any]]) -> None:
        try:
            bodies = list(_bodies(batch))
        except Exception:  # the thread must outlive any bug, or usage would pile up
            log.exception("costboard: could not encode usage")
            self._add("failed", len(batch))
            return
        for count, body in bodies:
            try:
                self._deliver(count, body)
            except Exception:
                log.exception("costboard: unexpected error while sending usage")
                self._add("failed", count)

    # -- delivery -----------------------------------------------------------------------

    def _deliver(self, count: int, body: bytes) -> None:
        """Send one body until the server settles it, retrying what is worth retrying."""
        attempt = 0
        while True:
            if self._abort.is_set():
                self._add("failed", count)
                return
            status, headers, data = self._post(body)
            if self._settled(status, data, count):
                return
            attempt += 1
            if attempt > self.max_retries:
                log.warning("costboard: gave up on %d events after %d tries", count, attempt)
                self._add("failed", count)
                return
            self._add("retries", 1)
            if self._abort.wait(self._delay(attempt, headers.get("retry-after"))):
                self._add("failed", count)
                return

    def _settled(self, status: int | None, data: bytes, count: int) -> bool:
        """Count the outcome of one answer; False when the request should be retried."""
        if status is None or status in (408, 429) or status >= 500:
            return False
        if status in (200, 202):
            result = _json(data)
            accepted, duplicates = result.get("accepted", count), result.get("duplicates", 0)
            self._add("sent", accepted + duplicates)
            self._add("duplicates", duplicates)
            self._add("rejected", len(result.get("rejected", [])))
            return True
        if status == 400 and "rejected" in _json(data):
            self._add("rejected", count)  # every event was invalid: resending cannot help
            log.warning("costboard: server rejected %d events: %s", count, data[:500])
            return True
        # 401, 403, 413, ...: the same request would get the same answer.
        log.warning("costboard: server refused %d events: HTTP %s %s", count, status, data[:200])
        self._add("failed", count)
        return True

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        # Exponential backoff with jitter, so many clients do not retry in lockstep.
        ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        told = _retry_after_seconds(retry_after)
        return max(delay, told) if told is not None else delay

    def _post(self, body: bytes) -> tuple[int | None, dict[str, str], bytes]:
        """One POST; (None, {}, b"") for a connection error or a timeout."""
        headers = {
            "Authorization": f"Bearer {self.api_key}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
        }
        for second_try in (False, True):
            reused = self._conn is not None
            try:
                conn = self._connection()
                conn.request("POST", self._path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.will_close:
                    self._close_connection()
                answer = {k.lower(): v for k, v in response.getheaders()}
                return response.status, answer, data
            except (OSError, http.client.HTTPException) as exc:
                self._close_connection()
                # A kept-alive socket the server has since closed: try once more on a new one.
                if reused and not second_try:
                    continue
                log.debug("costboard: request failed: %s", exc)
                break
        return None, {}, b""

    @property
    def _path(self) -> str:
        return self._target.path(EVENTS_PATH) if self._target else EVENTS_PATH

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            assert self._target is not None  # nothing is queued without a target
            self._conn = self._target.connect(self.timeout)
        return self._conn

    def _close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _add(self, name: str, n: int) -> None:
        with self._cond:
            self._counts[name] += n

    def _at_exit(self) -> None:
        if self.close(self.exit_timeout) is False:
            log.warning("costboard: exiting with undelivered usage: %s", self.stats())


class _Target:
    def __init__(self, scheme: str, host: str, port: int | None, prefix: str) -> None:
        self.scheme, self.host, self.port, self.prefix = scheme, host, port, prefix

    @classmethod
    def parse(cls, base_url: str) -> _Target | None:
        try:
            parts = urlsplit(base_url)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            log.error("costboard: base_url must be http(s)://host[:port], not %r", base_url)
            return None
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    def path(self, endpoint: str) -> str:
        return self.prefix + endpoint

    def connect(self, timeout: float) -> http.client.HTTPConnection:
        if self.scheme == "https":
            context = ssl.create_default_context()
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout, context=context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)


def _defaults(
    environment: str | None, feature: str | None, team: str | None, tags: Mapping[str, str] | None
) -> dict[str, Any]:
    values = {"environment": environment, "feature": feature, "team": team}
    defaults: dict[str, Any] = {k: v for k, v in values.items() if v is not None}
    if tags:
        defaults["tags"] = {str(k): str(v) for k, v in tags.items()}
    return defaults


def _event(defaults: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = dict(defaults)
    for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
        event[name] = _tokens(fields.pop(name), name)
    tags = fields.pop("tags")
    if tags:
        event["tags"] = {**event.get("tags", {}), **{str(k): str(v) for k, v in tags.items()}}
    event["event_id"] = str(fields.pop("event_id") or uuid.uuid4().hex)
    event["timestamp"] = _timestamp(fields.pop("timestamp"))
    event["provider"], event["model"] = str(fields.pop("provider")), str(fields.pop("model"))
    cost = fields.pop("cost_usd")
    if cost is not None:
        event["cost_usd"] = str(cost) if isinstance(cost, Decimal) else cost
    event.update({name: value for name, value in fields.items() if value is not None})
    return event


def _tokens(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _timestamp(value: datetime | float | str | None) -> Any:
    if value is None:
        return datetime.now(timezone.utc).isoformat()
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.isoformat()
    return value  # epoch seconds or an RFC 3339 string, as the API takes them


def _bodies(events: list[dict[str, Any]]) -> Iterator[tuple[int, bytes]]:
    """JSON bodies of at most MAX_BATCH events and MAX_BODY_BYTES each."""
    parts: list[bytes] = []
    size = 0
    for event in events:
        encoded = json.dumps(event, separators=(",", ":"), default=str).encode()
        if parts and (size + len(encoded) + 16 > MAX_BODY_BYTES or len(parts) >= MAX_BATCH):
            yield len(parts), b'{"events":[' + b",".join(parts) + b"]}"
            parts, size = [], 0
        parts.append(encoded)
        size += len(encoded) + 1
    if parts:
        yield len(parts), b'{"events":[' + b",".join(parts) + b"]}"


def _json(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds (RFC 9110: a number of seconds or an HTTP date), capped."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


# Clients alive in this process, so a forked child starts each of them afresh.
_CLIENTS: weakref.WeakSet[CostboardClient] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for client in list(_CLIENTS):
        client._reset_process_state()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
