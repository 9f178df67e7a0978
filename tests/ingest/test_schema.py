"""The event schema declared once (`ingest.schema.FIELDS`): it matches the `UsageEvent` model
and its table, and every part derived from it follows it, a new field included."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, make_dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from django.db import connection, models

from ingest import schema, services, typed, validation
from ingest.models import UsageEvent
from ingest.schema import COLUMNS, DERIVED, FIELDS, SENT, Field, Kind
from ingest.validation import ValidEvent, validate_event
from tenants.models import Team
from tests.conftest import World, event

MODEL_COLUMNS = {f.column: f for f in UsageEvent._meta.concrete_fields if f.column != "id"}
DECLARED = {f.column: f for f in FIELDS}


def test_it_declares_every_column_of_the_usage_event_model_once() -> None:
    assert len(COLUMNS) == len(set(COLUMNS))
    assert set(COLUMNS) == set(MODEL_COLUMNS)


@pytest.mark.parametrize("column", sorted(DECLARED))
def test_it_declares_each_column_as_the_model_defines_it(column: str) -> None:
    declared, model = DECLARED[column], MODEL_COLUMNS[column]
    assert model.null == declared.null
    if declared.pg_type == "text":
        assert isinstance(model, models.CharField)
        assert model.max_length == declared.max_length
    else:
        assert not isinstance(model, models.CharField)
    if declared.sent and not declared.required and not isinstance(declared.default, schema.Default):
        # What an event sent without the field gets is what the model gives one made without.
        assert model.get_default() == declared.default
    if declared.required:
        assert not model.has_default()


def test_it_declares_a_team_slug_as_long_as_a_team_allows() -> None:
    assert schema.SENT_BY_NAME["team"].max_length == Team._meta.get_field("slug").max_length


@pytest.mark.django_db
def test_it_declares_each_column_with_its_type_in_the_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name, data_type, is_nullable, character_maximum_length "
            "FROM information_schema.columns WHERE table_name = %s",
            [UsageEvent._meta.db_table],
        )
        table = {name: (kind, nullable == "YES", length) for name, kind, nullable, length in cursor}
        cursor.execute(
            "SELECT " + ", ".join("%s::regtype::text" for _ in FIELDS), [f.pg_type for f in FIELDS]
        )
        types = dict(zip(COLUMNS, cursor.fetchone(), strict=True))
    assert set(table) - {"id"} == set(COLUMNS)
    for f in FIELDS:
        kind, nullable, length = table[f.column]
        # Sent as text, stored in a varchar of the declared length.
        assert types[f.column] == ("text" if kind == "character varying" else kind), f.column
        assert (nullable, length) == (f.null, f.max_length if f.pg_type == "text" else None)


def test_it_refuses_a_cleaned_event_class_that_differs_from_the_declaration() -> None:
    schema.check_record(ValidEvent)

    @dataclass
    class Reordered:
        output_tokens: int
        input_tokens: int

    two = [schema.SENT_BY_NAME["input_tokens"], schema.SENT_BY_NAME["output_tokens"]]
    with pytest.raises(TypeError, match="fields must be"):
        schema.check_record(Reordered, two)
    tags = schema.SENT_BY_NAME["tags"]

    @dataclass
    class OtherDefault:
        tags: dict[str, str] = field(default_factory=lambda: {"a": "b"})

    with pytest.raises(TypeError, match="tags must default to"):
        schema.check_record(OtherDefault, [tags])
    with pytest.raises(TypeError, match="fields must be"):
        schema.check_record(make_dataclass("Missing", [f.name for f in SENT[:-1]]))


@pytest.mark.parametrize(
    "fields",
    [
        [Field("note", Kind.TEXT, "text")],  # no max_length
        [Field("n", Kind.COUNT, "bigint")],  # no max_value
        [Field("a", Kind.TEXT, "text", max_length=8), Field("a", DERIVED, "text")],
        [Field("s", Kind.STATUS, "int", max_value=9)],  # no default
        [Field("when", Kind.TIME, "timestamptz")],  # not the time received
        [Field("n", Kind.COUNT, "bigint", max_value=9, required=True, default=0)],
        [Field("x", Kind.MONEY, "numeric", default=Decimal(1), null_is_default=False)],
    ],
)
def test_it_refuses_a_declaration_that_its_rules_cannot_follow(fields: list[Field]) -> None:
    with pytest.raises(ValueError):
        schema.check_fields(fields)


def test_it_decodes_the_declared_fields_in_their_order() -> None:
    assert typed.TypedEvent.__struct_fields__ == tuple(f.name for f in SENT)
    assert [name for name, *_ in map(typed._struct_field, SENT)] == [f.name for f in SENT]


def test_it_names_the_declared_columns_in_both_statements() -> None:
    assert [name for name, _ in services.PG_EVENT_COLUMNS] == [
        c for c in COLUMNS if c not in services.BY_THE_STATEMENT
    ]
    assert services.PG_COPY.startswith(f"COPY {services.TABLE} ({', '.join(COLUMNS)}) ")


@pytest.mark.django_db
def test_it_puts_each_value_in_its_column(world: World) -> None:
    now = datetime.now(UTC)
    at = (now - timedelta(minutes=1)).replace(microsecond=5)
    raw = event(
        1, timestamp=at.isoformat(), cache_read_tokens=300, cache_write_tokens=20, feature="f",
        endpoint="/e", user_id="u", team="search", environment="staging", latency_ms=12.5,
        status_code=429, cost_usd="0.25", tags={"k": "v"},
    )  # fmt: skip
    valid, errors = validate_event(raw, now)
    assert valid is not None and not errors
    key = world.ingest.key
    expected = {
        **{f.column: raw[f.name] for f in SENT if f.name in raw},
        "timestamp": at, "team_id": world.team.pk, "client_cost_usd": Decimal("0.25"),
        "tenant_id": world.tenant.pk, "api_key_id": key.pk, "batch_id": 7, "received_at": now,
        "hour": at.replace(minute=0, second=0, microsecond=0),
    }  # fmt: skip
    (row_tuple,) = list(services._rows(key, 7, [(valid, world.team.pk)], now))
    row = dict(zip(COLUMNS, row_tuple, strict=True))
    assert row["cost_source"] == "catalog" and row["cost_usd"] > 0
    assert {column: row[column] for column in expected} == expected
    # The grouped INSERT's objects: the same values as JSON text, but those the statement sets.
    (json_row,) = services._event_rows(
        key, services.price_events(key, [(valid, world.team.pk)]), now
    )
    assert list(json_row) == [name for name, _ in services.PG_EVENT_COLUMNS]
    assert json_row == json.loads(
        json.dumps(
            {k: v for k, v in row.items() if k not in services.BY_THE_STATEMENT},
            default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v),
        )
    )


NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_it_derives_every_part_for_a_new_field_without_code_of_its_own() -> None:
    # A new dimension, declared like the others: checked, decoded, cleaned and stored.
    project = Field("project", Kind.TEXT, "text", max_length=32, default="")
    fields = (*SENT, project)
    schema.check_fields((*FIELDS, project))
    record = make_dataclass("Record", [(f.name, Any) for f in fields])
    namespace = {**vars(validation), "ValidEvent": record}
    raw = {**event(1), "timestamp": "2026-03-01T11:00:00Z", "project": "apollo"}
    too_long = {**raw, "project": "x" * 33}

    errors: validation.Errors = {}
    assert validation.RULES[project.kind](raw, project, errors, NOW) == "apollo"
    assert validation.RULES[project.kind](too_long, project, errors, NOW) == ""
    assert errors == {"project": ["must be at most 32 characters"]}

    common = validation.define_plain_check("common", False, fields, namespace)
    assert common(raw, NOW).project == "apollo"
    assert common({**raw, "project": None}, NOW).project == ""
    assert common(too_long, NOW) is None

    struct = msgspec.defstruct(
        "Struct", [typed._struct_field(f) for f in fields], kw_only=True, forbid_unknown_fields=True
    )
    decoded = msgspec.json.decode(json.dumps(raw), type=struct)
    assert validation.define_plain_check("plain", True, fields, namespace)(decoded, NOW) == common(
        raw, NOW
    )
    with pytest.raises(msgspec.ValidationError, match="project"):
        msgspec.json.decode(json.dumps(too_long), type=struct)

    template = "def rows(e):\n    tenant_id = 3\n    return ({row})\n"
    stored = (*fields, Field("tenant_id", DERIVED, "bigint", required=True))
    rows = schema.define_row_builder("rows", template, stored, ["tenant_id"], _tuple, {})
    assert rows(common(raw, NOW))[-2:] == ("apollo", 3)


def _tuple(values: list[tuple[Field, str]]) -> str:
    return ", ".join(value for _, value in values) + ","


def test_it_refuses_a_row_builder_that_leaves_a_column_without_its_value() -> None:
    template = "def rows(e, key):\n    tenant_id = 3\n    return ({row})\n"
    derived = Field("tenant_id", DERIVED, "bigint", required=True)
    with pytest.raises(ValueError, match="does not set the column 'tenant_id'"):
        schema.define_row_builder("rows", template, [derived], [], _tuple, {})
    with pytest.raises(ValueError, match="each must be a column and a variable"):
        schema.define_row_builder("rows", template, [derived], ["tenant_id", "hour"], _tuple, {})
    # A new sent field named like one of the builder's own variables is not taken from it.
    key = Field("key", Kind.TEXT, "text", max_length=8, default="")
    with pytest.raises(ValueError, match="has a variable 'key'"):
        schema.define_row_builder("rows", template, [key], [], _tuple, {})
    money = schema.SENT_BY_NAME["cost_usd"]
    with pytest.raises(ValueError, match="convert cost_usd"):
        schema.define_row_builder("rows", template, [money], [], services._json_object, {})


def test_it_refuses_a_field_named_like_a_name_of_the_one_pass_checks() -> None:
    now = Field("now", Kind.TEXT, "text", max_length=8, default="")
    with pytest.raises(ValueError, match="now"):
        validation.define_plain_check("common", False, (*SENT, now), {})
