"""The headless Chromium fixture the dashboard's browser tests use."""

from tests.dashboard.test_browser import browser  # noqa: F401 - a fixture, found by pytest
