"""Real-browser test support: start the real server, drive Debian's Chromium with Playwright.

Playwright never downloads a browser here: it launches the system Chromium by path.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    """The system Chromium, or None. AUDIO_DL_CHROMIUM overrides the search."""
    for candidate in (
        os.environ.get("AUDIO_DL_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(env: dict[str, str], log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start `streamlit run dashboard.py` on a free port; return the process and its base URL."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "dashboard.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process by the fixture
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited early, see {log_path}")
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return process, base_url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError(f"streamlit did not become healthy in 90 s, see {log_path}")


def wait_until_idle(page, timeout_ms: int = 90_000) -> None:
    """Wait until the app has rendered content and no script run is in progress.

    The status widget ("Running...") only appears once the browser has connected, so an
    early "not running" means nothing: require content on the page and several quiet checks
    in a row (a rerun triggered right after the first run is then awaited too).
    """
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    deadline = time.monotonic() + timeout_ms / 1000
    quiet_checks = 0
    while time.monotonic() < deadline and quiet_checks < 4:
        running = page.locator('[data-testid="stStatusWidgetRunningIcon"]').count() > 0
        has_content = page.locator('[data-testid="stMain"] [data-testid="stHeading"]').count() > 0
        quiet_checks = quiet_checks + 1 if (has_content and not running) else 0
        page.wait_for_timeout(300)
    if quiet_checks < 4:
        raise TimeoutError(f"the app was still running after {timeout_ms} ms")


def open_registered_page(page, app_url: str, url_path: str, timeout_ms: int = 120_000):
    """Go to a registered page, wait for its run to finish and its title; return its entry."""
    from ui.registry import PAGES, page_by_url

    entry = page_by_url(url_path)
    assert entry is not None, f"no page registered at /{url_path}"
    # The default page lives at the root: its own address makes Streamlit say "Page not
    # found" in a dialog that blocks every click until it is closed.
    address = "" if entry is PAGES[0] else entry.url_path
    page.goto(f"{app_url}/{address}")
    wait_until_idle(page, timeout_ms=timeout_ms)
    page.get_by_role("heading", name=entry.title, exact=True).first.wait_for()
    return entry


def exception_texts(page) -> list[str]:
    """Texts of any Streamlit exception boxes on the page."""
    return page.locator('[data-testid="stException"]').all_inner_texts()


def screenshot(page, name: str) -> Path:
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
