"""Schemathesis hooks of the fuzz stage (`SCHEMATHESIS_HOOKS=tests.fuzz.schemathesis_hooks`).

Before each call, the values of issue 16 item 1 that still make the ingest API answer 500
are taken out of the request (`issue16.defused`); the values themselves are tested one by
one in `test_ingest_values`, so the stage fails on every other 500 and nonconformance.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from tests.fuzz.issue16 import defused

INGEST_JSON = ("/api/v1/events", "/api/v1/metrics/llm-costs")


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    if case.operation.path not in INGEST_JSON or not isinstance(case.body, dict):
        return
    events = case.body.get("events")
    if isinstance(events, list):
        case.body = {**case.body, "events": [defused(e) for e in events]}
    else:
        case.body = defused(case.body)
