"""`seed_demo`: the demo tenant `acme` with weeks of usage; `make demo` runs it every start."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo import seeding as demo
from demo import story


class Command(BaseCommand):
    help = (
        f"Seed the demo tenant {demo.TENANT_SLUG!r} with {story.DAYS} days of usage. "
        "Does nothing when it already has events, unless --reset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--events", type=int, default=demo.DEFAULT_EVENTS)
        parser.add_argument(
            "--seed", type=int, default=42, help="random seed (same seed, same data)"
        )
        parser.add_argument(
            "--reset", action="store_true", help=f"delete {demo.TENANT_SLUG!r} first, then reseed"
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["events"] < 1:
            raise CommandError("--events must be at least 1")
        if opts["reset"] and demo.reset():
            self.stdout.write(f"deleted tenant {demo.TENANT_SLUG} and all its data")
        elif existing := demo.existing_events():
            self.stdout.write(
                f"tenant {demo.TENANT_SLUG} already has {existing:,} events; "
                "nothing to do (--reset reseeds)"
            )
            return
        started = time.monotonic()
        self.stdout.write(f"seeding {opts['events']:,} events over {story.DAYS} days ...")
        summary = demo.seed(opts["events"], opts["seed"], self._progress(started))
        self.stdout.write(
            f"seeded {demo.TENANT_SLUG}: {summary.events:,} events over {summary.days} days, "
            f"total cost ${summary.cost_usd:,.2f}, {summary.unpriced_requests:,} unpriced calls "
            f"({'/'.join(story.UNPRICED_MODEL)}), in {time.monotonic() - started:.1f}s"
        )
        for name, token in summary.tokens.items():
            self.stdout.write(f"  {name} key: {token}")

    def _progress(self, started: float) -> demo.Progress:
        next_step = [10]

        def report(stored: int, total: int) -> None:
            # One line per 10%, however the chunks fall.
            while stored * 100 >= next_step[0] * total and next_step[0] <= 100:
                self.stdout.write(
                    f"  {next_step[0]:3d}%  {stored:,} events stored, "
                    f"{time.monotonic() - started:.1f}s"
                )
                next_step[0] += 10

        return report
