from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import keycache
from tenants.management.commands._base import get_tenant
from tenants.selectors import api_key_of
from tenants.services import revoke_api_key


class Command(BaseCommand):
    help = (
        "Revoke a tenant's API key by its prefix (the part after cb_, shown on the settings "
        "page); every web process refuses it within a second."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("tenant")
        parser.add_argument("prefix", help="the key's prefix, e.g. 3f9a1c2b7d (or cb_3f9a1c2b7d)")

    def handle(self, *args: Any, **opts: Any) -> None:
        tenant = get_tenant(opts["tenant"])
        # Accept the prefix as the settings page shows it, or as the key's start.
        prefix = opts["prefix"].removeprefix("cb_").split("_")[0]
        key = api_key_of(tenant, prefix)
        if key is None:
            raise CommandError(f"tenant {tenant.slug!r} has no API key with prefix {prefix!r}")
        if key.revoked_at is not None:
            raise CommandError(
                f"key {key.prefix} of {tenant.slug} was already revoked at "
                f"{key.revoked_at:%Y-%m-%d %H:%M:%S} UTC"
            )
        # Outside a transaction: committed and announced on return.
        revoke_api_key(key, actor="manage.py")
        self.stdout.write(f"revoked {key.scope} key {key.prefix} of {tenant.slug}")
        if not keycache.stamp_readable():
            seconds = settings.API_KEY_CACHE_SECONDS
            self.stderr.write(
                "warning: the shared cache (Redis) is unreachable, so the revocation was not "
                "announced: a web process that still reaches it may accept the key for up to "
                f"{seconds} s (API_KEY_CACHE_SECONDS); one that does not reads keys from the "
                "database and refuses it already"
            )
