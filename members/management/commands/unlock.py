from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from members.lockout import unlock


class Command(BaseCommand):
    help = "Lift a login lockout: clear the failed sign-ins of one or more usernames."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", nargs="+")

    def handle(self, *args: Any, **opts: Any) -> None:
        for username in opts["username"]:
            cleared = unlock(username, actor="manage.py")
            self.stdout.write(
                f"{username}: unlocked" if cleared else f"{username}: had no failed sign-ins"
            )
