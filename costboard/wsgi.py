import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "costboard.settings")
django_application = get_wsgi_application()

from ingest.wsgi import IngestFastPath  # noqa: E402 - needs the apps that setup() loaded

# The two ingest URLs are answered before Django's middleware and DRF (see ingest/wsgi.py);
# everything else is Django's.
application = IngestFastPath(django_application)


def _warm_up() -> None:
    """Load the URL conf and the price catalog as the worker boots, not on its first request
    (which would otherwise take a second or more and trip exporters' short timeouts)."""
    from datetime import UTC, datetime

    from django.urls import get_resolver

    from pricing.catalog import catalog_price
    from pricing.catalog_updates import start_catalog_updates

    get_resolver().url_patterns  # noqa: B018 - importing every view is the point
    catalog_price("openai", "gpt-4o-mini", datetime.now(UTC))
    start_catalog_updates()  # only with CATALOG_AUTO_UPDATE on: ingest prices new models too


_warm_up()
