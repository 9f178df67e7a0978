from django.db import migrations, models


def slices_over_all_environments(apps, schema_editor):
    """Emptied: the slices are derived data, rebuilt whole by 0012 (the last migration that
    changes what a slice holds) from the full rollups."""
    for name in ("HourlySlice", "DailySlice"):
        table = apps.get_model("rollups", name)._meta.db_table
        schema_editor.execute(f"DELETE FROM {table}")  # noqa: S608 - a table name of ours


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
