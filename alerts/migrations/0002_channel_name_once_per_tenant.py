"""One channel of each name per tenant, in the database too (the form checked it alone, so two
saves at once could both pass). Channels that already share a name keep the oldest as it is;
the others get " (2)", " (3)"... so `test_channel TENANT NAME` can name each of them."""

from django.db import migrations, models


def rename_duplicates(apps, schema_editor):  # noqa: ANN001 - Django's migration signature
    channel = apps.get_model("alerts", "AlertChannel")
    # Every tenant's channels: a migration runs for the whole installation.
    rows = channel._base_manager.order_by("tenant_id", "name", "pk")
    taken = set(rows.values_list("tenant_id", "name"))
    seen = set()
    for row in rows.only("pk", "tenant_id", "name"):
        key = (row.tenant_id, row.name)
        if key not in seen:
            seen.add(key)
            continue
        n = 2
        while (row.tenant_id, new := f"{row.name[:90]} ({n})") in taken:
            n += 1
        taken.add((row.tenant_id, new))
        channel._base_manager.filter(pk=row.pk).update(name=new)


class Migration(migrations.Migration):
    dependencies = [("alerts", "0001_initial"), ("tenants", "0001_initial")]

    operations = [
        migrations.RunPython(rename_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="alertchannel",
            constraint=models.UniqueConstraint(
                fields=("tenant", "name"), name="channel_name_once_per_tenant"
            ),
        ),
    ]
