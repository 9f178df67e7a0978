"""Robustness corpus: malformed ingest requests and page/API parameters against the production
web server, counting answers by status. Every one must be a 2xx or 4xx, and every valid event
sent beside a bad one must be stored.

    .venv/bin/python bench/robustness.py [--workers 2]

Builds a scratch PostgreSQL database (tenant, ingest and read keys, a signed-in admin),
starts `costboard.serve` as production runs it (DEBUG off, granian, the ingest fast path) and
sends each case once: bad values in every event field next to one valid event, bad bodies,
content types and nesting on the three ingest paths, and out-of-range or hostile parameters on
every page and read API. Prints the count of each status, the cases answered 5xx (none
expected), and the valid events stored against those sent.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.server import web_server  # noqa: E402 - after the path that makes it importable

DB = "costboard_bench_robustness"
ENV = {
    "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DB}",
    "REDIS_URL": "redis://127.0.0.1:6379/6",
    "SECRET_KEY": "bench-secret",
    "COSTBOARD_PLAIN_HTTP": "1",
    "INGEST_RATE_LIMIT_PER_MINUTE": "100000000",
}
PY = str(ROOT / ".venv" / "bin" / "python")

SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
from tenants.models import Role, Scope
from tenants.services import add_member, create_api_key, create_team, create_tenant
tenant = create_tenant("robust")
create_team(tenant, "search")
user = get_user_model().objects.create_user("robust-admin", password="x-robust-pass-1")
add_member(tenant, user, Role.ADMIN)
_, ingest = create_api_key(tenant, scope=Scope.INGEST, name="ingest")
_, read = create_api_key(tenant, scope=Scope.READ, name="read")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(ingest, read, session.session_key)
"""

VALID = {"provider": "openai", "model": "gpt-4o-mini", "input_tokens": 100, "output_tokens": 20}

# (field, bad value): each is sent as one bad event beside one valid event.
WEIRD_STRINGS: tuple[Any, ...] = ("\ud800", "a\u0000b", "x" * 10_000, 12, None, [], {"a": 1})
STRING_FIELDS = ("provider", "model", "feature", "environment", "user_id", "event_id", "endpoint")
# fmt: off
BAD: dict[str, tuple[Any, ...]] = {
    "cost_usd": (1e16, "1e20", 10**17, "1e400", -1, "NaN", "Infinity", "-Infinity", "abc", True,
                 [], {}, "0x10", "1e-400", ""),
    "input_tokens": (-1, 2**62 - 1, 2**63, 2**64, 10**400, "12", 1.5, True, None, "NaN", [], {},
                     1e308),
    "output_tokens": (-5, 2**63, "many", 1e400, False),
    "cache_read_tokens": (-1, 10**9, 101, "x"),  # 101 > input_tokens
    "cache_write_tokens": (-1, 2**70, None),
    "latency_ms": (-1, 1e300, 10**400, "slow", "NaN", [], 1e-400),
    "timestamp": ("0001-01-01T00:00:00+05:00", "1900-01-01T00:00:00Z", 0,
                  "9999-12-31T23:59:59-05:00", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                  "yesterday", "", 1e20, -1e20, 2**64, "2026-12-04T25:00:00Z",
                  "2026-12-04T12:00:00+24:00", "2026-12-04T12:00:00+99:99", "\u0000", [], {},
                  True),
    **dict.fromkeys(STRING_FIELDS, WEIRD_STRINGS),
    "team": (*WEIRD_STRINGS, "no-such-team"),
    "status_code": (-1, 1000, 2**40, "ok", 99.5),
    "tags": ({"\ud800": "v"}, {"k": "v\udbff"}, {"k": {"nested": 1}}, {"k": ["a"]},
             {"k" * 1000: "v"}, {"k": "v" * 10_000}, {f"k{i}": "v" for i in range(1000)}, "tags",
             [1, 2], {"k": None}, {"": "v"}, {"k": 1e400}),
    "unknown_field": ("x",),
}
# fmt: on
BAD_VALUES = [(field, value) for field, values in BAD.items() for value in values]

BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("not json", b"{not json", "application/json"),
    ("empty", b"", "application/json"),
    ("json array", b"[]", "application/json"),
    ("events null", b'{"events": null}', "application/json"),
    ("events object", b'{"events": {}}', "application/json"),
    ("events string", b'{"events": "x"}', "application/json"),
    ("events empty", b'{"events": []}', "application/json"),
    ("event not object", b'{"events": [1, "x", null]}', "application/json"),
    ("nested 1000", b'{"events": ' + b"[" * 1000 + b"]" * 1000 + b"}", "application/json"),
    ("nested 100000", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("lone surrogate body", b'{"events": [{"model": "\\ud800"}]}', "application/json"),
    ("invalid utf-8", b'{"events": [{"model": "\xff\xfe"}]}', "application/json"),
    ("utf-16", json.dumps({"events": [VALID]}).encode("utf-16"), "application/json"),
    ("bom", b"\xef\xbb\xbf" + json.dumps({"events": [VALID]}).encode(), "application/json"),
    ("text/plain", json.dumps({"events": [VALID]}).encode(), "text/plain"),
    ("form", b"events=1", "application/x-www-form-urlencoded"),
    ("no content type", json.dumps({"events": [VALID]}).encode(), ""),
    ("huge number", b'{"events": [{"input_tokens": 1' + b"0" * 5000 + b"}]}", "application/json"),
    ("duplicate keys", b'{"events": [], "events": [{"a": 1}]}', "application/json"),
    ("too many events", json.dumps({"events": [VALID] * 10_001}).encode(), "application/json"),
    ("over 10 MB", b'{"events": ["' + b"x" * 11_000_000 + b'"]}', "application/json"),
    ("NaN literal", b'{"events": [{"input_tokens": NaN}]}', "application/json"),
]

OTLP_BODIES: list[tuple[str, bytes, str]] = [
    ("protobuf garbage", b"\x0a\xff\xff\xff\xff\x0f" + os.urandom(64), "application/x-protobuf"),
    ("protobuf empty", b"", "application/x-protobuf"),
    ("json garbage", b"{", "application/json"),
    (
        "json nested",
        b'{"resourceSpans": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "application/json",
    ),
    ("json wrong types", b'{"resourceSpans": [{"scopeSpans": "x"}]}', "application/json"),
    (
        "json huge int attr",
        json.dumps(
            {
                "resourceSpans": [
                    {
                        "scopeSpans": [
                            {
                                "spans": [
                                    {
                                        "traceId": "0" * 32,
                                        "spanId": "1" * 16,
                                        "name": "chat",
                                        "attributes": [
                                            {
                                                "key": "gen_ai.usage.input_tokens",
                                                "value": {"intValue": str(2**70)},
                                            },
                                            {
                                                "key": "gen_ai.request.model",
                                                "value": {"stringValue": "gpt-4o"},
                                            },
                                            {
                                                "key": "gen_ai.system",
                                                "value": {"stringValue": "openai"},
                                            },
                                        ],
                                    }
                                ]
                            }
                        ]
                    }
                ]
            }
        ).encode(),
        "application/json",
    ),
    (
        "json surrogate attr",
        b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "\\ud800",'
        b' "attributes": [{"key": "gen_ai.request.model", "value": {"stringValue": "\\udc00"}}]}]}]}]}',
        "application/json",
    ),
    ("json null", b"null", "application/json"),
    ("xml", b"<spans/>", "application/xml"),
]

PARAMS = [
    "/api/v1/usage?from=0001-01-01&to=0001-01-02",
    "/api/v1/usage?from=2026-01-01&to=99999-01-01",
    "/api/v1/usage?from=2026-02-30&to=2026-03-01",
    "/api/v1/usage?from=2026-12-01&to=2026-01-01",
    "/api/v1/usage?from=1970-01-01&to=2026-12-01",
    "/api/v1/usage?from=2025-01-01&to=2026-12-01&granularity=hour",
    "/api/v1/usage?granularity=minute",
    "/api/v1/usage?group_by=nope",
    "/api/v1/usage?group_by=feature%00",
    "/api/v1/usage?group_by=" + ",".join(["model"] * 2000),
    "/api/v1/usage?from=%00&to=%ff",
    "/api/v1/usage?from=2026-1-1&to=2026-1-2",
    "/api/v1/usage?team=%ud800",
    "/api/v1/budgets/status?team=" + "x" * 5000,
    "/?range=all",
    "/?from=0001-01-01&to=9999-12-31",
    "/?from=1969-12-31&to=2026-01-01",
    "/?from=9998-12-31&to=9998-12-31",
    "/?range=custom&from=x&to=y",
    "/?stack=%00",
    "/?stack=nope&feature=" + "f" * 5000,
    "/teams/?from=2026-02-29&to=2026-03-01",
    "/teams/no-such-team/",
    "/teams/search/?from=1970-01-01&to=9998-12-31",
    "/features/?from=2027-01-01&to=2026-01-01",
    "/models/?environment=%00%00",
    "/consumers/?range=last_millennium",
    "/chargeback/?month=0000-00",
    "/chargeback/?month=2026-13",
    "/chargeback/?month=99999-01",
    "/chargeback/allocation/?month=1900-01",
    "/invoices/?month=abc",
    "/invoices/month/2026-99/csv/",
    "/invoices/month/0000-01/focus/",
    "/invoices/99999999999999999999/",
    "/budgets/?month=2026-00",
    "/budgets/99999999999999999999/",
    "/anomalies/?from=x&severity=%00",
    "/anomalies/99999999999999999999/",
    "/settings/?tab=%00",
]


def prepare() -> tuple[str, str, str]:
    env = {**os.environ, **ENV}
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", DB], check=True)
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", DB], check=True)
    subprocess.run([PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", SETUP], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    ingest, read, session = out.strip().splitlines()[-1].split()
    return ingest, read, session


def send(port: int, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        # Refused before the whole body was sent (a 413 for a body over the limit): read it.
        with contextlib.suppress(ConnectionError):
            conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    except (ConnectionError, http.client.HTTPException):
        return 0  # no answer at all: counted apart, never a pass for a 5xx
    finally:
        conn.close()


def ingest_cases(ingest: str) -> list[tuple[str, str, str, bytes, dict[str, str], int]]:
    """(name, method, path, body, headers, valid events in the body)."""
    auth = {"Authorization": f"Bearer {ingest}"}
    json_headers = {**auth, "Content-Type": "application/json"}
    cases = []
    for field, value in BAD_VALUES:
        for path in ("/api/v1/events",):
            good = {**VALID, "event_id": f"good-{uuid.uuid4()}"}
            bad = {**VALID, "event_id": f"bad-{uuid.uuid4()}", field: value}
            body = json.dumps({"events": [good, bad]}, allow_nan=True).encode()
            cases.append((f"{field}={str(value)[:30]!r}", "POST", path, body, json_headers, 1))
    for name, body, content_type in BAD_BODIES:
        headers = {**auth, **({"Content-Type": content_type} if content_type else {})}
        for path in ("/api/v1/events", "/api/v1/metrics/llm-costs"):
            cases.append((f"{path} {name}", "POST", path, body, headers, 0))
    for name, body, content_type in OTLP_BODIES:
        cases.append((f"otlp {name}", "POST", "/v1/traces", body,
                      {**auth, "Content-Type": content_type}, 0))  # fmt: skip
    for name, header in (
        ("no auth", ""),
        ("basic", "Basic eDp5"),
        ("bearer junk", "Bearer x"),
        ("bearer surrogate", "Bearer cb_\udcff"),
        ("empty bearer", "Bearer "),
    ):
        headers = {"Content-Type": "application/json"}
        if header:
            headers["Authorization"] = header.encode("utf-8", "surrogateescape").decode("latin-1")
        body = json.dumps({"events": [VALID]}).encode()
        cases.append((f"auth {name}", "POST", "/api/v1/events", body, headers, 0))
    for method in ("GET", "PUT", "DELETE", "PATCH", "TRACE"):
        cases.append((f"{method} /api/v1/events", method, "/api/v1/events", b"", auth, 0))
    return cases


def stored_events() -> int:
    env = {**os.environ, **ENV}
    code = (
        "from ingest.models import UsageEvent;"
        "print(UsageEvent.unscoped_all_tenants.filter(event_id__startswith='good-').count())"
    )
    out = subprocess.run(
        [PY, "manage.py", "shell", "-c", code], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    return int(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    ingest, read, session = prepare()
    with web_server({**ENV, "DEBUG": "0"}, workers=args.workers) as base:
        port = int(base.rsplit(":", 1)[1])
        statuses: dict[str, Counter[int]] = {"ingest": Counter(), "parameters": Counter()}
        failures: list[str] = []
        good_sent = 0
        for name, method, path, body, headers, good in ingest_cases(ingest):
            status = send(port, method, path, body, headers)
            statuses["ingest"][status] += 1
            good_sent += good if status == 202 else 0
            if status >= 500 or status == 0:
                failures.append(f"ingest {status}: {name}")
        for path in PARAMS:
            headers = {"Cookie": f"sessionid={session}"}
            if path.startswith("/api/"):
                headers = {"Authorization": f"Bearer {read}"}
            status = send(port, "GET", path, None, headers)
            statuses["parameters"][status] += 1
            if status >= 500 or status == 0:
                failures.append(f"parameter {status}: {path[:80]}")
    stored = stored_events()
    for group, counts in statuses.items():
        total = sum(counts.values())
        by_status = ", ".join(f"{s}: {n}" for s, n in sorted(counts.items()))
        print(f"{group}: {total} cases; {by_status}")
    print(f"valid events beside bad ones: {good_sent} sent in accepted batches, {stored} stored")
    print(f"5xx or dropped connections: {len(failures)}")
    for failure in failures:
        print("  " + failure)
    sys.exit(1 if failures or stored != good_sent else 0)


if __name__ == "__main__":
    main()
