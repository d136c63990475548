"""Open the real app (dashboard.py, its sidebar and navigation) on one page under AppTest."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.paths import REPO_ROOT

DASHBOARD = str(REPO_ROOT / "dashboard.py")


def open_page(script: str, *, timeout: float = 120) -> AppTest:
    """Run dashboard.py, switch to `script` (e.g. "pages/music.py") and return the AppTest.

    AppTest resolves relative paths against the calling file, so the entry is passed absolute.
    """
    app = AppTest.from_file(DASHBOARD, default_timeout=timeout)
    app.run()
    app.switch_page(script).run()
    return app
