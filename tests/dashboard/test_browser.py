"""Every main page in real headless Chromium under the production Content-Security-Policy:
plots render, nothing is refused, no console errors."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from billing.services import generate_month
from budgets.services import set_budget
from ingest.services import ingest_events
from rollups.services import roll_up_all_pending
from tests.conftest import PASSWORD, World, event

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMEDRIVER).exists(), reason="needs chromium and chromium-driver"
    ),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--window-size=1280,1800",
    ):
        options.add_argument(flag)
    options.binary_location = CHROMIUM
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _seed(world: World) -> None:
    now = datetime.now(UTC)
    calls = [
        event(
            i,
            timestamp=(now - timedelta(hours=7 * i)).isoformat(),
            feature=f"f{i % 3}",
            latency_ms=200 + i,
            user_id=f"u{i % 4}",
        )
        for i in range(60)
    ]
    calls.append(
        event("evil", feature="<script>alert(1)</script>", model='"><img src=x onerror=alert(1)>')
    )
    ingest_events(world.ingest.key, calls)
    roll_up_all_pending(world.tenant.pk)


def _sign_in(driver, base: str, username: str = "member") -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(f"{base}/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    # A click returns before the page after the POST has loaded: a `get` issued meanwhile can
    # be overtaken by the sign-in's own redirect, leaving the browser on the overview.
    WebDriverWait(driver, 20).until(
        lambda d: (
            "/accounts/login/" not in d.current_url
            and d.execute_script("return document.readyState") == "complete"
        )
    )


def _rendered_plots(driver) -> int:  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20).until(
        lambda d: (
            d.execute_script("return document.querySelectorAll('[data-figure]').length") > 0
            and d.execute_script(
                "return document.querySelectorAll('[data-figure]:not([data-rendered])').length"
            )
            == 0
        )
    )
    return driver.execute_script(
        "return document.querySelectorAll('[data-rendered] .main-svg').length"
    )


@pytest.mark.parametrize(
    ("path", "name"), [("/?range=30d", "overview"), ("/teams/search/?range=30d", "team")]
)
def test_it_renders_the_plots_without_console_errors(
    world: World, live_server, browser, path: str, name: str
) -> None:  # type: ignore[no-untyped-def]
    _seed(world)
    _sign_in(browser, live_server.url)
    browser.get(f"{live_server.url}{path}")
    assert _rendered_plots(browser) >= 3
    # The hostile feature name is shown as text, never run: no alert dialog opened.
    assert (
        browser.execute_script("return document.body.innerText").count("<script>alert(1)</script>")
        >= 1
    )
    assert [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"] == []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / f"{name}.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000


def _errors(driver) -> list[dict[str, object]]:  # type: ignore[no-untyped-def]
    # SEVERE covers script errors, failed loads and every CSP refusal ("... violates the
    # following Content Security Policy directive ...").
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


# Every main page, as the admin (who may open all of them); plots where the page draws some.
PAGES = [
    ("/?range=30d", 3),
    ("/teams/?range=30d", 1),
    ("/teams/search/?range=30d", 3),
    ("/features/?range=30d", 1),
    ("/models/?range=30d", 1),
    ("/consumers/?range=30d", 0),
    ("/budgets/", 1),
    ("/anomalies/", 0),
    ("/chargeback/", 0),
    ("/invoices/", 0),
    ("/prices/", 0),
    ("/settings/", 0),
    ("/settings/members/", 0),
    ("/settings/audit/", 0),
    ("/accounts/password/change/", 0),
]


def test_it_serves_every_page_under_the_policy_without_console_errors(
    world: World, live_server, browser
) -> None:  # type: ignore[no-untyped-def]
    import httpx
    from selenium.webdriver.support.ui import WebDriverWait

    _seed(world)
    set_budget(world.tenant, amount=Decimal("0.5"), team=world.team)
    generate_month(world.tenant, datetime.now(UTC).date().replace(day=1))
    policy = httpx.get(f"{live_server.url}/accounts/login/").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy.split("; ") and "unsafe" not in policy
    _sign_in(browser, live_server.url, "owner")
    for path, plots in PAGES:
        browser.get(f"{live_server.url}{path}")
        assert browser.execute_script("return document.querySelector('main h1') !== null"), path
        if plots:
            assert _rendered_plots(browser) >= plots, path
        assert _errors(browser) == [], path
    # The bars that used to be style= attributes are sized by static/js/costboard.js.
    browser.get(f"{live_server.url}/budgets/")
    assert browser.execute_script("return document.querySelector('.progress .fill').style.width")
    browser.get(f"{live_server.url}/api/docs/")
    WebDriverWait(browser, 20).until(
        lambda d: d.execute_script("return document.querySelector('.swagger-ui .info') !== null")
    )
    assert _errors(browser) == []
