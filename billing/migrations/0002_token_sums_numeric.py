"""Token sums become numeric(38, 0) (core.counts): ten years of a tenant's calls at full
ingest rate could overflow bigint. One ALTER TABLE per table, so each table is rewritten once
(an ACCESS EXCLUSIVE lock for the rewrite), not once per column."""

import core.counts
from django.db import migrations


def _alter(table: str, columns: list[str], to: str) -> str:
    return f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} TYPE {to}" for c in columns)


TABLES = {
    "billing_invoiceline": [
        "cache_read_tokens",
        "cache_write_tokens",
        "input_tokens",
        "output_tokens",
    ],
}


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
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
                    model_name="invoiceline",
                    name="cache_read_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="invoiceline",
                    name="cache_write_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="invoiceline",
                    name="input_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
                migrations.AlterField(
                    model_name="invoiceline",
                    name="output_tokens",
                    field=core.counts.TokenSumField(default=0),
                ),
            ],
        )
    ]
