"""`/whatif/` in headless Chromium under the production Content-Security-Policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import World
from tests.dashboard.test_browser import (
    CHROMEDRIVER,
    _errors,
    _rendered_plots,
    _sign_in,
)
from tests.whatif.test_api import QUERY, _month

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMEDRIVER).exists(), reason="needs chromium and chromium-driver"
    ),
    pytest.mark.django_db(transaction=True),
]


def test_it_draws_the_comparison_without_console_errors(world: World, live_server, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    _month(world)
    _sign_in(browser, live_server.url)
    browser.get(f"{live_server.url}/whatif/?range=custom&{QUERY}")
    assert _rendered_plots(browser) >= 1
    rows = browser.find_elements(By.CSS_SELECTOR, "table[data-testid=whatif] tbody tr")
    assert len(rows) >= 4  # actual and the defaults
    # The shared link opens the same comparison.
    browser.find_element(By.CSS_SELECTOR, "a[data-testid=share]").click()
    assert _rendered_plots(browser) >= 1
    assert "models=" in browser.current_url
    assert _errors(browser) == []
