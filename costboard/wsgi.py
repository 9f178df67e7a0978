import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costboard.settings")
application = get_wsgi_application()


def _warm_up() -> None:
    """Load the URL conf and the price catalog as the worker boots, not on its first request
    (which would otherwise take a second or more and trip exporters' short timeouts)."""
    from datetime import UTC, datetime

    from django.urls import get_resolver

    from pricing.catalog import catalog_price

    get_resolver().url_patterns  # noqa: B018 - importing every view is the point
    catalog_price("openai", "gpt-4o-mini", datetime.now(UTC))


_warm_up()
