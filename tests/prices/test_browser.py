"""/prices/ in headless Chromium under the production policy, with a real worker: set a price
for an unpriced model, preview the re-price, apply it, watch it finish. No console errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from ingest.models import UsageEvent
from prices.models import RepriceRun, RepriceStatus
from tests.billing.helpers import send
from tests.conftest import World, event
from tests.dashboard.test_browser import CHROMEDRIVER, _errors, _sign_in, browser  # noqa: F401
from tests.worker import celery_worker

pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery_worker,
    pytest.mark.skipif(
        not Path(CHROMEDRIVER).exists(), reason="needs chromium and chromium-driver"
    ),
    pytest.mark.django_db(transaction=True),
]


def test_it_sets_a_price_previews_and_applies_a_re_price_in_the_browser(
    world: World,
    live_server,
    browser,  # noqa: F811
) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    now = datetime.now(UTC)
    # Today (UTC), as the price set below is from today on: an hour ago was yesterday just
    # after midnight, and the re-price from today then found no calls.
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    when = max(now - timedelta(hours=1), midnight).isoformat()
    send(
        world.ingest.key,
        event("gpt", timestamp=when),
        *[event(f"m{i}", timestamp=when, provider="inhouse", model="mystery") for i in range(4)],
    )
    _sign_in(browser, live_server.url, "owner")
    browser.get(f"{live_server.url}/prices/")
    first = browser.find_elements(By.CSS_SELECTOR, '[data-testid="model-row"]')[0]
    assert "inhouse/mystery" in first.text and "unpriced" in first.text
    first.find_element(By.CSS_SELECTOR, '[data-testid="set-price"]').click()
    assert browser.find_element(By.NAME, "model").get_attribute("value") == "mystery"
    form = browser.find_element(By.ID, "add-price")
    today = datetime.now(UTC).date().isoformat()
    for name, value in (
        ("effective_from", today),
        ("input_per_mtok", "2"),
        ("output_per_mtok", "6"),
    ):
        form.find_element(By.NAME, name).send_keys(value)
    form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    # The click returns before the page after the POST has loaded: wait for its offer.
    offer = WebDriverWait(browser, 30, poll_frequency=0.2).until(
        lambda d: d.find_element(By.CSS_SELECTOR, '[data-testid="reprice-offer-button"]')
    )
    assert _errors(browser) == []

    with celery_worker():
        # The worker computes the preview; its page refreshes itself until it is there.
        offer.click()
        rows = WebDriverWait(browser, 60, poll_frequency=0.2).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="preview-row"]')
        )
        assert len(rows) == 1 and "search" in rows[0].text
        # 4 calls of 1,000 input and 500 output tokens at 2 and 6 per million: 0.02 more.
        difference = browser.find_element(By.CSS_SELECTOR, '[data-testid="total-difference"]')
        assert difference.text == "0.020000000000"
        assert _errors(browser) == []

        browser.find_element(By.CSS_SELECTOR, '[data-testid="apply"]').click()
        WebDriverWait(browser, 30, poll_frequency=0.2).until(
            lambda d: "/prices/reprice/" in d.current_url and "/preview/" not in d.current_url
        )
        WebDriverWait(browser, 60, poll_frequency=0.5).until(
            lambda d: d.find_element(By.CSS_SELECTOR, '[data-testid="status"]').text == "Done"
        )
    assert browser.find_element(By.CSS_SELECTOR, '[data-testid="changed"]').text.startswith(
        "4 of 5"
    )
    assert _errors(browser) == []
    run = RepriceRun.objects.for_tenant(world.tenant).get()
    assert run.status == RepriceStatus.DONE and run.requested_by.username == "owner"
    assert run.new_total_usd - run.old_total_usd == Decimal("0.02")
    costs = UsageEvent.objects.for_tenant(world.tenant).filter(model="mystery")
    assert {(e.cost_usd, e.cost_source) for e in costs} == {(Decimal("0.005"), "override")}
    browser.get(f"{live_server.url}/prices/")
    runs = browser.find_element(By.CSS_SELECTOR, '[data-testid="runs"]').text
    assert "owner" in runs and "Done" in runs
    # Re-priced, its calls are no longer unpriced: the priced models follow by spend.
    rows = browser.find_elements(By.CSS_SELECTOR, '[data-testid="model-row"]')
    mystery = next(r for r in rows if "inhouse/mystery" in r.text)
    assert "your price" in mystery.text and "unpriced call" not in mystery.text
    assert _errors(browser) == []
