"""Open every registered page in headless Chromium: title shown, no exception box."""

from __future__ import annotations

import pytest

from tests.e2e import browser
from ui.registry import PAGES


@pytest.mark.parametrize("entry", PAGES, ids=[p.url_path for p in PAGES])
def test_page_renders_in_browser(page, app_url, entry):
    browser.open_registered_page(page, app_url, entry.url_path)
    browser.screenshot(page, f"page-{entry.url_path}")
    assert browser.exception_texts(page) == []
