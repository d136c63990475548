"""Open every registered page in headless Chromium: title shown, no exception box; the
sidebar's pushed status."""

from __future__ import annotations

import time

import pytest

from tests.e2e import browser
from ui.registry import PAGES


@pytest.mark.parametrize("entry", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_in_browser(page, app_url, entry):
    browser.open_registered_page(page, app_url, entry.url_path)
    browser.screenshot(page, f"page-{entry.url_path}")
    assert browser.exception_texts(page) == []


def test_the_sidebar_status_is_pushed_and_an_idle_tab_sends_nothing(page, app_url):
    """The sidebar's three status lines (memory, trainings, workers) show in the pushed view,
    which asks its route every MEMORY_REFRESH_SECONDS; meanwhile the idle tab sends Streamlit
    no message (the fragment it replaced asked for a script run every 5 s)."""
    from ui.sidebar import MEMORY_REFRESH_SECONDS

    sent, asked = [], []
    page.on("websocket", lambda ws: ws.on("framesent", lambda _: sent.append(time.monotonic())))
    page.on("request", lambda r: "/audio-dl/status" in r.url and asked.append(time.monotonic()))
    browser.open_registered_page(page, app_url, "home")
    view = page.frame_locator('[data-testid="stSidebar"] iframe').locator(".status-lines")
    view.filter(has_text="Jobs: ").wait_for(timeout=30_000)
    lines = view.inner_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("app ") and lines[1].startswith("Jobs: "), lines
    since = time.monotonic()
    page.wait_for_timeout(2.2 * MEMORY_REFRESH_SECONDS * 1000)
    assert [t for t in sent if t > since] == []
    assert len([t for t in asked if t > since]) >= 2  # asked again, every few seconds
    assert browser.exception_texts(page) == []
