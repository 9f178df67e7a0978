"""Raw events into monthly partitions, live: see `ingest.partition_migration`."""

from typing import Any

from django.conf import settings
from django.db import migrations

from ingest import partition_migration, partitions


def forwards(apps: Any, schema_editor: Any) -> None:
    partition_migration.migrate(
        schema_editor.connection, partitions.TABLE, settings.RAW_EVENT_RETENTION_DAYS
    )


class Migration(migrations.Migration):
    # Not atomic: the copy commits a chunk at a time while ingest goes on.
    atomic = False

    dependencies = [
        ("ingest", "0003_pending_batch_quarantine"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveConstraint(
                    model_name="usageevent", name="event_unique_id_per_tenant"
                ),
            ],
            database_operations=[migrations.RunPython(forwards, migrations.RunPython.noop)],
        ),
    ]
