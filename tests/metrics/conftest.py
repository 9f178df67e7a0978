from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _fresh_scrapes(settings: Any) -> None:
    # Tests change the rollups between scrapes: every scrape reads the database. The tests of
    # the cache, the token and the budget set their own values.
    settings.METRICS_CACHE_SECONDS = 0
    settings.METRICS_TOKEN = ""
    # Open, as on a private network: these tests are about the figures; who may scrape is
    # tested in test_metrics_access.py.
    settings.METRICS_PUBLIC = True
    settings.METRICS_DAILY_BUDGET_USD = ""
    settings.METRICS_LABELS = ["tenant", "team", "provider", "model"]
    settings.METRICS_MAX_SERIES = 2000
