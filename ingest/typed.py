"""Decode a `POST /api/v1/events` body straight into typed events, in one C pass (msgspec).

`json.loads` plus `validate_event` cost ~6 µs per event of a batch; here msgspec checks the
types, lengths and ranges while it parses, and only the few rules it cannot express are left
to Python (`validate_typed`). The values it decodes are the very values `json.loads(body,
parse_float=Decimal)` gives: strings unescaped alike, integers as int, every other JSON number
as `Decimal(its text)`, so money stays exact and each rule sees what the full validator sees.

Anything this path does not fully accept goes to the rules of `ingest.validation`, which decide
and name every error as before:
- a body msgspec refuses (not JSON, not this shape, an unknown field, a value of the wrong
  type or out of range, a NUL character, too many events): `decode_events` returns None and
  the endpoint parses the body with `json.loads`, as it always did;
- an event failing a rule checked in Python (a blank name, a future timestamp, cached tokens
  above input tokens, ...): `validate_typed` hands that event, as the dict `json.loads` would
  have made, to `validate_in_full`; if it holds an array or object where a rule wants a
  scalar, the whole body goes to the JSON path instead (`JsonPathNeeded`).
Unknown fields are refused, not skipped: msgspec would skip their values without the checks
`json.loads` makes (valid UTF-8, nesting depth), and this path must never accept a body the
JSON path refuses. The JSON path ignores them, as it always did.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from django.conf import settings

from ingest.validation import (
    MAX_TAGS,
    MAX_TOKENS,
    Errors,
    ValidEvent,
    plain_latency,
    plain_money,
    plain_timestamp,
    validate_in_full,
)

# The limits of `validate_in_full`; msgspec counts characters (code points), as len() does.
Count = Annotated[int, msgspec.Meta(ge=0, lt=MAX_TOKENS)]
Text = Annotated[str, msgspec.Meta(max_length=128)]
Short = Annotated[str, msgspec.Meta(max_length=64)]
TagKey = Annotated[str, msgspec.Meta(max_length=128)]
TagValue = Annotated[str, msgspec.Meta(max_length=256)]
Tags = Annotated[dict[TagKey, TagValue], msgspec.Meta(max_length=MAX_TAGS)]
Status = Annotated[int, msgspec.Meta(ge=0, le=999)]


class TypedEvent(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One event as msgspec decodes it. A field's None (or default) means what a missing field
    means to `validate_in_full`; `timestamp`, `latency_ms` and `cost_usd` take several JSON
    types, so they stay untyped (Any) and are judged in Python."""

    provider: Short
    model: Text
    input_tokens: Count
    output_tokens: Count
    event_id: Text | None = None
    timestamp: Any = None
    cache_read_tokens: Count | None = None
    cache_write_tokens: Count | None = None
    feature: Text | None = None
    endpoint: Text | None = None
    user_id: Text | None = None
    team: Short | None = None
    environment: Short = "production"
    latency_ms: Any = None
    status_code: Status | None = None
    cost_usd: Any = None
    tags: Tags | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    events: list[TypedEvent]


# float_hook: every JSON number with a fraction or exponent becomes Decimal(its exact text), as
# json.loads(parse_float=Decimal) makes it; a typed float would round money.
_batch = msgspec.json.Decoder(_Batch, float_hook=Decimal)
_single = msgspec.json.Decoder(TypedEvent, float_hook=Decimal)
_REFUSED = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
# A NUL character (refused by the rules) can only reach a decoded string through this escape:
# a raw NUL byte is not valid JSON. Also found inside "\\u0000" (no NUL): then merely slower.
_NUL_ESCAPE = b"\\u0000"


def decode_events(body: bytes) -> list[TypedEvent] | None:
    """The events of `{"events": [...]}` or of a single event object; None when the body is
    anything else, which the JSON path then answers."""
    if b"\\" in body and _NUL_ESCAPE in body:  # most bodies hold no backslash: one memchr
        return None
    try:
        events = _batch.decode(body).events
    except msgspec.ValidationError:
        # Valid JSON but no batch: perhaps one event (or neither, then refused again).
        return _one_event(body)
    except _REFUSED:
        return None
    # The JSON path answers 413 for too many events.
    return events if len(events) <= settings.INGEST_MAX_EVENTS else None


def _one_event(body: bytes) -> list[TypedEvent] | None:
    try:
        return [_single.decode(body)]
    except _REFUSED:
        return None


class JsonPathNeeded(Exception):
    """This body must be answered by the JSON path (raised before anything is stored)."""


def validate_typed(event: TypedEvent, now: datetime) -> tuple[ValidEvent | None, Errors]:
    """Like `validate_event`: cleaned, or None with the full validator's errors."""
    valid = _clean(event, now)
    if valid is not None:
        return valid, {}
    untyped = (event.timestamp, event.latency_ms, event.cost_usd)
    if any(type(value) is list or type(value) is dict for value in untyped):
        # No rule accepts an array or object there, but only there can a body nest deep
        # enough for `json.loads` to give up (RecursionError, a few levels before msgspec
        # does): the JSON path answers such a body, exactly as it always did.
        raise JsonPathNeeded
    return validate_in_full(msgspec.structs.asdict(event), now)


def _clean(e: TypedEvent, now: datetime) -> ValidEvent | None:
    """The event cleaned as `validate_in_full` cleans it, or None if any rule is not plainly met.

    msgspec already checked every type, length and range; what is left: blank names, the
    timestamp, cached tokens within input tokens, latency and money."""
    provider, model, event_id = e.provider.strip().lower(), e.model.strip(), e.event_id
    if event_id is None:
        event_id = uuid.uuid4().hex
    elif not event_id.strip():
        return None
    cache_read, cache_write = e.cache_read_tokens or 0, e.cache_write_tokens or 0
    at = now if e.timestamp is None else plain_timestamp(e.timestamp, now)
    if not provider or not model or at is None or cache_read + cache_write > e.input_tokens:
        return None
    latency, cost = e.latency_ms, e.cost_usd
    if latency is not None and (latency := plain_latency(latency)) is None:
        return None
    if cost is not None and (cost := plain_money(cost)) is None:
        return None
    status = 200 if e.status_code is None else e.status_code
    return ValidEvent(
        event_id, at, provider, model, e.input_tokens, e.output_tokens, cache_read, cache_write,
        e.team, e.feature or "", e.endpoint or "", e.user_id or "", e.environment or "production",
        latency, status, cost, e.tags or {},
    )  # fmt: skip
