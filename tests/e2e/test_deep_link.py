"""A direct link to a page, as the very first request to a fresh server, shows the full app."""

from __future__ import annotations

import os

from tests.e2e import browser


def test_first_request_to_a_page_url_keeps_sidebar_and_navigation(browser_instance, tmp_path):
    env = dict(os.environ, AUDIO_DL_RUNS_DIR=str(tmp_path / "runs"), AUDIO_DL_DEVICE="cpu")
    process, url = browser.start_server(env, tmp_path / "server.log")
    try:
        context = browser_instance.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{url}/tensors" if _registered("tensors") else f"{url}/home")
        browser.wait_until_idle(page)
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        # The device panel comes from dashboard.py: it is missing when the page ran alone.
        assert "Device" in sidebar, sidebar
        assert browser.exception_texts(page) == []
        context.close()
    finally:
        process.terminate()
        process.wait(timeout=15)


def _registered(url_path: str) -> bool:
    from ui.registry import page_by_url

    return page_by_url(url_path) is not None
