from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from rollups import tags
from tenants.management.commands._base import get_tenant


class Command(BaseCommand):
    help = (
        "Choose the tag keys a tenant's usage is rolled up by (at most 5; none: no tag "
        "dimensions), then re-roll the newly chosen keys from the retained raw events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("keys", nargs="*", help="tag keys, in the order pages show them")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        try:
            added = tags.set_tag_dimensions(tenant, opts["keys"], actor="manage.py")
        except tags.BadTagKeys as exc:
            raise CommandError(str(exc)) from None
        keys = [d.key for d in tags.chosen(tenant)]
        self.stdout.write(f"{tenant.slug}: tag dimensions {', '.join(keys) or '(none)'}")
        if added:
            self.stdout.write(f"re-rolling {', '.join(added)} from the retained raw events")
            events = tags.reroll(tenant.pk, added, self._progress)
            self.stdout.write(f"re-rolled {events} events")

    def _progress(self, day: date, events: int) -> None:
        if events:
            self.stdout.write(f"  {day.isoformat()}: {events} events")
