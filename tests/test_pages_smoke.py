"""Every registered page opens through the real entry script without an exception."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.apptest_helpers import DASHBOARD, open_page
from ui.registry import PAGES


@pytest.mark.parametrize("page", PAGES, ids=[p.url_path for p in PAGES])
def test_page_opens_without_exception(page):
    app = open_page(page.script)
    assert not app.exception, app.exception
    titles = [t.value for t in app.title]
    assert page.title in titles, f"{page.script} shows titles {titles}, expected {page.title!r}"


def test_home_links_only_registered_pages():
    app = AppTest.from_file(DASHBOARD, default_timeout=60).run()
    assert not app.exception
    # the sidebar device panel is part of every page
    assert app.sidebar, "the shared sidebar is missing"
