from django.db import migrations, models


def slices_over_all_environments(apps, schema_editor):
    """Slices again from the full rollups, now also summed over all environments.

    Emptied first: the slices are derived data, and rebuilding them whole is right whatever
    an earlier migration already built."""
    from rollups.sql import rebuild_slices

    for name in ("HourlySlice", "DailySlice"):
        table = apps.get_model("rollups", name)._meta.db_table
        schema_editor.execute(f"DELETE FROM {table}")  # noqa: S608 - a table name of ours
    rebuild_slices()


def _slice_key(time_field: str, name: str) -> models.UniqueConstraint:
    fields = ("tenant", "grouping", "environment", time_field, "team_pk", "feature", "provider")
    return models.UniqueConstraint(fields=(*fields, "model"), name=name)


class Migration(migrations.Migration):
    dependencies = [("rollups", "0008_consumer_window_environments"), ("tenants", "0001_initial")]

    operations = [
        migrations.RemoveConstraint(model_name="dailyslice", name="daily_slice_unique_key"),
        migrations.RemoveConstraint(model_name="hourlyslice", name="hourly_slice_unique_key"),
        migrations.AddConstraint(
            model_name="dailyslice", constraint=_slice_key("day", "daily_slice_unique_key")
        ),
        migrations.AddConstraint(
            model_name="hourlyslice", constraint=_slice_key("hour", "hourly_slice_unique_key")
        ),
        migrations.RunPython(slices_over_all_environments, migrations.RunPython.noop),
    ]
