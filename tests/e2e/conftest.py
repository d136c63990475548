"""Fixtures for real-browser tests: one server and one Chromium per test session.

Without Chromium these tests skip, unless AUDIO_DL_REQUIRE_BROWSER=1 (set by .ci/run), in
which case they fail: CI must never silently skip the browser.
"""

from __future__ import annotations

import os

import pytest

from tests.e2e import browser

REQUIRE_BROWSER = os.environ.get("AUDIO_DL_REQUIRE_BROWSER") == "1"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    path = browser.chromium_path()
    if path is None:
        message = "Chromium not found (install Debian's `chromium`, or set AUDIO_DL_CHROMIUM)"
        if REQUIRE_BROWSER:
            pytest.fail(message + "; AUDIO_DL_REQUIRE_BROWSER=1 makes browser tests mandatory")
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def app_url(tmp_path_factory, chromium_executable) -> str:
    """Base URL of a real `streamlit run dashboard.py` started for this test session."""
    root = tmp_path_factory.mktemp("e2e_server")
    env = dict(os.environ)
    env.update(
        AUDIO_DL_RUNS_DIR=str(root / "runs"),
        AUDIO_DL_CACHE_DIR=str(root / "cache"),
        AUDIO_DL_DEVICE="cpu",
        PYTHONUNBUFFERED="1",
    )
    process, url = browser.start_server(env, root / "server.log")
    yield url
    process.terminate()
    try:
        process.wait(timeout=15)
    except Exception:
        process.kill()


@pytest.fixture(scope="session")
def browser_instance(chromium_executable):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_executable, args=browser.CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser_instance):
    context = browser_instance.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()
