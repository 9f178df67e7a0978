"""Token sums become numeric(38, 0) (core.counts): ten years of a tenant's calls at full
ingest rate could overflow bigint. One ALTER TABLE per table, so each table is rewritten once
(an ACCESS EXCLUSIVE lock for the rewrite), not once per column."""

import core.counts
from django.db import migrations


def _alter(table: str, columns: list[str], to: str) -> str:
    return f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} TYPE {to}" for c in columns)


TABLES = {
    "rollups_consumerdailyrollup": ["input_tokens", "output_tokens"],
    "rollups_consumerwindowrollup": ["input_tokens", "output_tokens"],
    "rollups_dailyrollup": [
        "cache_read_tokens",
        "cache_write_tokens",
        "input_tokens",
        "output_tokens",
        "unpriced_tokens",
    ],
    "rollups_dailyslice": [
        "cache_read_tokens",
        "cache_write_tokens",
        "input_tokens",
        "output_tokens",
        "unpriced_tokens",
    ],
    "rollups_hourlyrollup": [
        "cache_read_tokens",
        "cache_write_tokens",
        "input_tokens",
        "output_tokens",
        "unpriced_tokens",
    ],
    "rollups_hourlyslice": [
        "cache_read_tokens",
        "cache_write_tokens",
        "input_tokens",
        "output_tokens",
        "unpriced_tokens",
    ],
    "rollups_lifetimerollup": [
        "cache_read_tokens",
        "cache_write_tokens",
        "input_tokens",
        "output_tokens",
        "unpriced_tokens",
    ],
}


class Migration(migrations.Migration):
    dependencies = [
        ("rollups", "0010_consumer_hot_writes"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    _alter(table, columns, "numeric(38, 0)"), _alter(table, columns, "bigint")
                )
                for table, columns in TABLES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="consumerdailyrollup",
                    name="input_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="consumerdailyrollup",
                    name="output_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="consumerwindowrollup",
                    name="input_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="consumerwindowrollup",
                    name="output_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyrollup",
                    name="cache_read_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyrollup",
                    name="cache_write_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyrollup",
                    name="input_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyrollup",
                    name="output_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyrollup",
                    name="unpriced_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyslice",
                    name="cache_read_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyslice",
                    name="cache_write_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyslice",
                    name="input_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyslice",
                    name="output_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="dailyslice",
                    name="unpriced_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyrollup",
                    name="cache_read_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyrollup",
                    name="cache_write_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyrollup",
                    name="input_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyrollup",
                    name="output_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyrollup",
                    name="unpriced_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyslice",
                    name="cache_read_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyslice",
                    name="cache_write_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyslice",
                    name="input_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyslice",
                    name="output_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="hourlyslice",
                    name="unpriced_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="lifetimerollup",
                    name="cache_read_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="lifetimerollup",
                    name="cache_write_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="lifetimerollup",
                    name="input_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="lifetimerollup",
                    name="output_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="lifetimerollup",
                    name="unpriced_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
            ],
        )
    ]
