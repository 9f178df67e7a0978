"""A fresher catalog, on purpose: genai-prices' own updater, when the operator opts in.

`UpdatePrices` runs one background thread per process that fetches the catalog's data from
`CATALOG_UPDATE_URL` every `CATALOG_UPDATE_INTERVAL` seconds and swaps it in; our cached
prices follow (`pricing.catalog.catalog_generation`). Every process that prices events runs
it (web processes price at ingest, the worker when it re-prices), so both see new models.
An update prices the calls that arrive after it; stored events keep their costs until a
re-price (`rollup --since`) is run on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import genai_prices
from django.conf import settings
from genai_prices import UpdatePrices, data_snapshot

from pricing.catalog import catalog_generation


def catalog_updater() -> UpdatePrices | None:
    """The updater the settings ask for, or None (the default: keep the bundled data)."""
    if not settings.CATALOG_AUTO_UPDATE:
        return None
    return UpdatePrices(
        url=settings.CATALOG_UPDATE_URL, update_interval=settings.CATALOG_UPDATE_INTERVAL
    )


def start_catalog_updates(wait: bool | float = False) -> UpdatePrices | None:
    """Start this process's updater if enabled; `wait` blocks until its first fetch."""
    updater = catalog_updater()
    if updater is not None:
        updater.start(wait=wait)
    return updater


@dataclass(frozen=True)
class CatalogData:
    """Where this process's catalog prices come from, and how fresh they are."""

    updated: bool  # fetched by the updater, or bundled with the package
    version: str  # the installed genai-prices
    fetched_at: datetime | None  # when the updater fetched it (None: bundled)
    providers: int

    @property
    def label(self) -> str:
        if self.fetched_at is not None:
            return f"fetched {self.fetched_at:%Y-%m-%d %H:%M} UTC"
        return f"bundled with genai-prices {self.version}"


def catalog_data_date() -> CatalogData:
    """The date of the catalog data in use, for the prices and what-if pages."""
    catalog_generation()  # let cached prices follow a snapshot the updater just swapped in
    snapshot = data_snapshot.get_snapshot()
    fetched = None
    if snapshot.from_auto_update:
        fetched = snapshot.timestamp.astimezone(UTC)
    return CatalogData(
        updated=snapshot.from_auto_update,
        version=genai_prices.__version__,
        fetched_at=fetched,
        providers=len(snapshot.providers),
    )
