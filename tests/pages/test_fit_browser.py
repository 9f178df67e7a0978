"""Every page fits and reads: in one headless Chromium session against one live server with
the demo's data plus very long names, each page at 1280x900 and at 390x844 must not scroll
sideways (tables may scroll inside their own box at 390, never at 1280), and axe-core must
find no "serious" or "critical" accessibility violation. Full-page screenshots are left in
var/screenshots/fit/ for a person to look at."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from anomalies.models import Anomaly, Kind
from billing.models import Invoice
from budgets.models import Budget
from budgets.services import evaluate_and_alert
from demo import seeding as demo
from ingest.services import ingest_events
from members.services import invitation_link, invite
from prices.services import request_preview, request_reprice, run_preview
from rollups.services import roll_up_all_pending
from rollups.tags import set_tag_dimensions
from tenants.models import Scope, Tenant
from tenants.services import create_api_key, create_team
from tests.conftest import event
from tests.dashboard.test_browser import CHROMEDRIVER, CHROMIUM

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "var" / "screenshots" / "fit"
WIDTHS = ((1280, 900, False), (390, 844, True))  # width, height, mobile
SERIOUS = ("serious", "critical")
LONG_TEAM = "Platform Reliability and Developer Experience Engineering (EMEA)"  # 64 characters
LONG_FEATURE = "customer-support-ticket-triage-and-summarisation-with-escalation"  # 64
LONG_MODEL = "ft:gpt-4o-mini-2024-07-18:acme-corp:support-triage-v3:9xZk2Lq"
LONG_USER = "a.very.long.end.user.identifier+billing-test@customers.example.com"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMEDRIVER).exists(), reason="needs chromium and chromium-driver"
    ),
    pytest.mark.django_db(transaction=True),
]


def _axe_source() -> str:
    """axe-core from the project's package-lock.json; `npm ci` if it is not installed yet."""
    if not AXE.exists():
        if shutil.which("npm") is None or shutil.which("node") is None:
            pytest.skip("needs node and npm to install axe-core (package.json: npm ci)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ROOT, check=True)
    return AXE.read_text()


@pytest.fixture
def chromium() -> Iterator[Any]:
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"):
        options.add_argument(flag)
    options.add_argument("--hide-scrollbars")  # the same layout width at every size
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _seed(base_url: str) -> dict[str, str]:
    """The demo's story (six teams, six models, anomalies, budgets, invoices) plus the longest
    names a client may send; returns the pages that need an id or a token."""
    demo.seed(events=6000, progress=None)
    tenant = Tenant.objects.get(slug=demo.TENANT_SLUG)
    team = create_team(
        tenant, "platform-reliability-and-developer-experience", LONG_TEAM, "CC-9999"
    )
    key, _ = create_api_key(tenant, team=team, scope=Scope.INGEST)
    # A tag key with long values: its page, chargeback by it, a budget on it.
    set_tag_dimensions(tenant, ["customer_tier"])
    now = timezone.now()
    calls = [
        event(
            f"long-{i}",
            timestamp=(now - timedelta(hours=5 * i + 1)).isoformat(),
            feature=f"{LONG_FEATURE[:-3]}-{i % 3:02d}",
            model=LONG_MODEL if i % 2 else "gpt-4o",
            user_id=f"{i % 5}.{LONG_USER}",
            environment="staging-eu-west-1-canary-deployment",
            endpoint=f"/v1/organisations/{LONG_FEATURE[:40]}/completions",
            status_code=(200, 429, 503)[i % 3],
            tags={"customer_tier": f"{LONG_FEATURE}-{i % 4}"},
        )
        for i in range(120)
    ]
    ingest_events(key, calls)
    roll_up_all_pending(tenant.pk)
    hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    # An open anomaly of the long feature, however many the demo's detector found.
    Anomaly.objects.for_tenant(tenant).create(
        tenant=tenant, kind=Kind.COST_PER_REQUEST, severity="critical", feature=LONG_FEATURE,
        opened_at=now, first_hour=hour, last_hour=hour, observed=Decimal("0.0421"),
        baseline=Decimal("0.0102"), z_score=7.5, summary=f"Cost per request of {LONG_FEATURE} is 4.1x its baseline",
    )  # fmt: skip
    # Budgets of the new scopes with the longest subjects: an endpoint, and a tag value whose
    # key is not chosen (the card then says why it is not evaluated).
    for scope, fields in [
        (Budget.Scope.ENDPOINT, {"endpoint": "/v1/" + "organisations-projects-completions" * 3}),
        (Budget.Scope.TAG, {"tag_key": "retired_customer_segment", "tag_value": LONG_FEATURE}),
    ]:
        budget = Budget.objects.create(
            tenant=tenant, name=f"Long {scope}", amount_usd=Decimal(100), scope=scope, **fields
        )
        evaluate_and_alert(budget, fire=False)
    membership = invite(tenant, "new.analyst.with.a.long.address@finance.example.com", "viewer")
    since = (now - timedelta(days=3)).date()
    tenant.refresh_from_db()
    computed, _ = request_preview(tenant, since)
    run_preview(tenant.pk, computed.pk)  # what the worker does with it
    run = request_reprice(tenant, since, tenant.pricing_version)
    waiting, _ = request_preview(tenant, since - timedelta(days=1))
    return {
        "team": team.slug,
        "feature": f"{LONG_FEATURE[:-3]}-00",  # no character its path encodes
        "budget": str(Budget.objects.for_tenant(tenant).values_list("pk", flat=True).first()),
        "anomaly": str(Anomaly.objects.for_tenant(tenant).get(feature=LONG_FEATURE).pk),
        "invoice": str(Invoice.objects.for_tenant(tenant).values_list("pk", flat=True).first()),
        "run": str(run.pk),
        "since": since.isoformat(),
        "preview": str(computed.pk),
        "waiting": str(waiting.pk),
        "invite": invitation_link(membership, base_url).removeprefix(base_url),
    }


# Signed out first, then as the demo admin (who may open every page).
ANONYMOUS = [
    "/accounts/login/",
    "/accounts/password/reset/",
    "/accounts/password/reset/done/",
    "/accounts/reset/MQ/not-a-token/",
    "/accounts/reset/done/",
    "{invite}",
]
SIGNED_IN = [
    "/?range=30d",
    "/?range=30d&stack=model",
    "/?range=30d&stack=tag:customer_tier&status=2xx",
    "/teams/search/?range=30d&tag.customer_tier=(other)&stack=model_family",
    # "More filters" open with every select set, the longest tag value selected.
    f"/?range=30d&tag.customer_tier={LONG_FEATURE}-1&model_family=GPT-4o%20mini&status=429"
    "&endpoint=/v1/organisations/customer-support-ticket-triage-and-summa/completions",
    "/consumers/?range=30d&tag.customer_tier=(none)",
    "/teams/?range=30d",
    "/teams/search/?range=30d",
    "/teams/{team}/?range=30d",
    "/features/?range=30d",
    "/features/{feature}/?range=30d",
    "/models/?range=30d",
    "/endpoints/?range=30d",
    "/statuses/?range=30d",
    "/tags/customer_tier/?range=30d",
    "/consumers/?range=30d",
    "/whatif/",
    "/budgets/",
    "/budgets/new/",
    "/budgets/{budget}/",
    "/anomalies/",
    "/anomalies/{anomaly}/",
    "/anomalies/thresholds/",
    "/chargeback/",
    "/chargeback/?by=tag:customer_tier",
    "/invoices/",
    "/invoices/{invoice}/",
    "/prices/",
    "/prices/reprice/?since={since}",
    "/prices/reprice/preview/{preview}/",
    "/prices/reprice/preview/{waiting}/",
    "/prices/reprice/{run}/",
    "/settings/",
    "/settings/members/",
    "/settings/audit/",
    "/accounts/password/change/",
    "/accounts/password/change/done/",
    "/api/docs/",
]

# Every rule axe-core reported on some page, printed for a person to read (only "serious" and
# "critical" fail the test).
MILDER: dict[str, set[str]] = {}

# Swagger UI draws each operation's summary as a button around its own copy button; that is its
# markup, not ours, so this one rule is not asked of /api/docs/.
NOT_OURS = {"/api/docs/": {"nested-interactive"}}

# Sideways overflow: the document at any width; a scrolling box (a table's wrapper) only at 1280.
MEASURE = """
const doc = document.scrollingElement;
const boxes = [...document.querySelectorAll('main *')].filter(e => {
  const s = getComputedStyle(e);
  return ['auto', 'scroll'].includes(s.overflowX) && e.scrollWidth > e.clientWidth + 1
    && e.tagName !== 'PRE';
}).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
  + ' ' + e.scrollWidth + '>' + e.clientWidth);
const width = arguments[0];
const wide = e => e.getBoundingClientRect().right > width + 1;
const culprits = [...document.querySelectorAll('body *')].filter(e => wide(e)
  && !(e.parentElement && wide(e.parentElement))
  && !(e.parentElement && e.parentElement.closest('.table-wrap')))
  .slice(0, 4).map(e => e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
  + (e.id ? '#' + e.id : '') + ' right=' + Math.round(e.getBoundingClientRect().right));
const bars = [...document.querySelectorAll('.filters')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).length;
return {page: doc.scrollWidth, boxes: boxes, culprits: culprits, bars: bars,
  h1: document.querySelector('h1') !== null};
"""
AXE_RUN = """
const done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => ({
  id: v.id, impact: v.impact,
  nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ') + ' :: ' + n.failureSummary)
})))).catch(e => done([{id: 'axe-error', impact: 'critical', nodes: [String(e)]}]));
"""


def _settle(driver: Any) -> None:
    """Plots are drawn after load (static/js/charts.js): wait until every one is."""
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, 20, poll_frequency=0.1).until(
        lambda d: d.execute_script(
            "return document.readyState === 'complete' && "
            "document.querySelectorAll('[data-figure]:not([data-rendered])').length === 0 && "
            "(!document.getElementById('swagger-ui') || !!document.querySelector('.swagger-ui .info'))"
        )
    )


def _screenshot(driver: Any, name: str) -> None:
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def _check(driver: Any, url: str, path: str, axe: str) -> list[str]:
    """Every problem of one page at both widths, as lines of the failure message."""
    problems: list[str] = []
    slug = "".join(c if c.isalnum() or c == "-" else "_" for c in path.strip("/"))
    for width, height, mobile in WIDTHS:
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        driver.get(url)
        _settle(driver)
        # A page that reloads itself while a job runs waits while something has focus.
        driver.execute_script(
            "document.querySelector('[data-reload-after]') && document.querySelector('main a')?.focus()"
        )
        fit = driver.execute_script(MEASURE, width)
        if not fit["h1"]:
            problems.append(f"{path} @{width}: no <h1> (not the page asked for?)")
        # Compared with the width asked for: on a phone Chromium widens the layout viewport
        # (innerWidth) to whatever overflows, and zooms out.
        if fit["page"] > width:
            problems.append(f"{path} @{width}: page is {fit['page']}px wide: {fit['culprits']}")
        if fit["bars"]:
            problems.append(f"{path} @{width}: the filter bar overflows instead of wrapping")
        if width >= 1280 and fit["boxes"]:
            problems.append(f"{path} @{width}: boxes scroll sideways: {fit['boxes']}")
        driver.execute_script(axe)
        for v in driver.execute_async_script(AXE_RUN):
            MILDER.setdefault(f"{v['impact']} {v['id']}", set()).add(path)
            if v["impact"] in SERIOUS and v["id"] not in NOT_OURS.get(path, set()):
                problems.append(f"{path} @{width}: axe {v['impact']} {v['id']}: {v['nodes']}")
        _screenshot(driver, f"{width}-{slug or 'root'}")
    return problems


def _reloads_while_queued(driver: Any, url: str) -> None:
    """The re-price page follows its run by reloading itself (a script, not a meta refresh)."""
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    driver.execute_script("window.notReloadedYet = true; document.activeElement?.blur()")
    WebDriverWait(driver, 10, poll_frequency=0.2).until(
        lambda d: d.execute_script("return window.notReloadedYet === undefined")
    )


def _sign_in(driver: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base}/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys("admin")
    driver.find_element(By.NAME, "password").send_keys(demo.PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    _settle(driver)


def test_it_fits_every_page_at_1280_and_390_and_axe_finds_nothing_serious(
    live_server: Any, chromium: Any
) -> None:
    axe = _axe_source()
    ids = _seed(live_server.url)
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    chromium.set_script_timeout(30)
    started = time.monotonic()
    problems: list[str] = []
    for path in ANONYMOUS:
        problems += _check(chromium, live_server.url + path.format(**ids), path, axe)
    _sign_in(chromium, live_server.url)
    for path in SIGNED_IN:
        problems += _check(chromium, live_server.url + path.format(**ids), path, axe)
    print(
        f"{len(ANONYMOUS) + len(SIGNED_IN)} pages x 2 widths in {time.monotonic() - started:.1f} s"
    )
    for rule, paths in sorted(MILDER.items()):
        print(f"axe-core: {rule} on {len(paths)} pages: {' '.join(sorted(paths))}")
    assert problems == [], "\n".join(problems)
    _reloads_while_queued(chromium, live_server.url + "/prices/reprice/{run}/".format(**ids))
    assert len(list(SCREENSHOTS.glob("*.png"))) == 2 * (len(ANONYMOUS) + len(SIGNED_IN))
