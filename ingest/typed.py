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

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import msgspec
from django.conf import settings

from ingest.schema import SENT, TAG_KEY_LENGTH, TAG_VALUE_LENGTH, Field, Kind
from ingest.validation import Errors, ValidEvent, plain_typed, validate_in_full


def _struct_field(f: Field) -> tuple[Any, ...]:
    """A sent field as a msgspec struct field: its type with the limits of `validate_in_full`
    (msgspec counts characters, code points, as len() does), and its default. None (or the
    default) means what a missing field means to `validate_in_full`. TIME, DURATION and MONEY
    take several JSON types, so they stay untyped (Any) and are judged in Python."""
    kind: Any
    if f.kind in (Kind.ID, Kind.NAME, Kind.TEXT):
        kind = Annotated[str, msgspec.Meta(max_length=f.max_length)]
    elif f.kind in (Kind.COUNT, Kind.STATUS):
        kind = Annotated[int, msgspec.Meta(ge=0, le=f.max_value)]
    elif f.kind is Kind.TAGS:
        key = Annotated[str, msgspec.Meta(max_length=TAG_KEY_LENGTH)]
        value = Annotated[str, msgspec.Meta(max_length=TAG_VALUE_LENGTH)]
        kind = Annotated[dict[key, value], msgspec.Meta(max_length=f.max_length)]  # type: ignore[valid-type]
    elif f.kind in (Kind.TIME, Kind.DURATION, Kind.MONEY):
        return (f.name, Any, None)
    else:
        raise ValueError(f"{f.name}: no msgspec type for a field of kind {f.kind.name}")
    if f.required:
        return (f.name, kind)
    if f.null_is_default:
        return (f.name, kind | None, None)
    return (f.name, kind, f.default)  # null refused: the JSON path names the error


# One event as msgspec decodes it: the sent fields of `ingest.schema.FIELDS`, in order.
TypedEvent = msgspec.defstruct(
    "TypedEvent",
    [_struct_field(f) for f in SENT],
    module=__name__,
    kw_only=True,  # the declared order, required fields among optional ones
    forbid_unknown_fields=True,
    gc=False,
)
# The fields msgspec leaves untyped (Any): only there can a list or dict be.
_UNTYPED = [name for name, kind, *_ in map(_struct_field, SENT) if kind is Any]
_Batch = msgspec.defstruct(
    "_Batch",
    [("events", list[TypedEvent])],  # type: ignore[valid-type]
    module=__name__,
    forbid_unknown_fields=True,
    gc=False,
)


# float_hook: every JSON number with a fraction or exponent becomes Decimal(its exact text), as
# json.loads(parse_float=Decimal) makes it; a typed float would round money.
_batch: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_Batch, float_hook=Decimal)
_single = msgspec.json.Decoder(TypedEvent, float_hook=Decimal)
_REFUSED = (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError)
# A NUL character (refused by the rules) can only reach a decoded string through this escape:
# a raw NUL byte is not valid JSON. Also found inside "\\u0000" (no NUL): then merely slower.
_NUL_ESCAPE = b"\\u0000"


def decode_events(body: bytes) -> list[msgspec.Struct] | None:
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


def _one_event(body: bytes) -> list[msgspec.Struct] | None:
    try:
        return [_single.decode(body)]
    except _REFUSED:
        return None


class JsonPathNeeded(Exception):
    """This body must be answered by the JSON path (raised before anything is stored)."""


def validate_typed(event: Any, now: datetime) -> tuple[ValidEvent | None, Errors]:
    """Like `validate_event`: cleaned, or None with the full validator's errors."""
    valid = plain_typed(event, now)
    if valid is not None:
        return valid, {}
    untyped = [getattr(event, name) for name in _UNTYPED]
    if any(type(value) is list or type(value) is dict for value in untyped):
        # No rule accepts an array or object there, but only there can a body nest deep
        # enough for `json.loads` to give up (RecursionError, a few levels before msgspec
        # does): the JSON path answers such a body, exactly as it always did.
        raise JsonPathNeeded
    return validate_in_full(msgspec.structs.asdict(event), now)
