"""The event schema declared once (`ingest.schema.FIELDS`): it matches the `UsageEvent` model
and its table, and the validation derived from it follows it, a new field included."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, make_dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
import pytest
from django.db import connection, models

from ingest import schema, typed, validation
from ingest.models import UsageEvent
from ingest.schema import COLUMNS, DERIVED, FIELDS, SENT, Field, Kind
from ingest.validation import ValidEvent
from tenants.models import Team
from tests.conftest import event

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


NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_it_derives_every_part_for_a_new_field_without_code_of_its_own() -> None:
    # A new dimension, declared like the others: checked, decoded and cleaned.
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
