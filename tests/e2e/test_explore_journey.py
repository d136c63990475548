"""A student's journey on the Sound explorer page, in a real browser.

Open the built-in spoken digits, see the map and its clusters, click a point to hear it,
listen to a cluster.
"""

from __future__ import annotations

from tests.e2e import browser


def test_explore_journey(page, app_url):
    browser.open_registered_page(page, app_url, "explore")
    page.get_by_text("200 clips", exact=False).first.wait_for()
    page.get_by_text("Adjusted Rand index vs speaker").wait_for()

    points = page.locator(".js-plotly-plot .scatterlayer .point")
    points.first.wait_for()
    assert points.count() == 200
    # plotly listens on its drag layer above the points: hover where a point is drawn, then click
    points.nth(7).scroll_into_view_if_needed()
    box = points.nth(7).bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(500)
    page.mouse.down()
    page.mouse.up()
    browser.wait_until_idle(page)
    page.get_by_text("Selected: 1 clip(s)").wait_for()
    selected = page.locator("audio").first
    selected.evaluate(
        "a => new Promise(r => a.readyState >= 1 ? r() : a.addEventListener('loadedmetadata', r))"
    )
    assert 0.1 < selected.evaluate("a => a.duration") < 3.0  # one spoken digit

    page.get_by_text("What is in each cluster").wait_for()
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    assert page.locator("audio").count() >= 2  # the selected clip and the cluster's members
    browser.screenshot(page, "explore-journey")
    assert browser.exception_texts(page) == []
