"""A student's journey on the Train page, in a real browser.

Pick the built-in digits (a quick subset), train one epoch and watch the curve grow, see
the confusion matrix, train a second run and compare the two.
"""

from __future__ import annotations

import re
import time

from tests.e2e import browser

LIVE_POINTS = """() => {
  const plots = [...document.querySelectorAll('.js-plotly-plot')];
  const live = plots.find(p => (p.data || []).some(t => t.name === 'train (running)'));
  if (!live) return -1;
  return live.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
}"""


def _set_number(page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    browser.wait_until_idle(page)


LAST_CELL = """g => {
  const c = g.data[0].customdata, rows = c._inputArray || c, n = g.data[0].x.length;
  for (let k = n - 1; k >= 0; k--) { const r = rows[k]; if (r[2] > 0) return [k, g.data[0].y[k],
  g.data[0].x[k]]; }
  return [-1, '', ''];
}"""


def _click(page, locator) -> None:
    """Plotly listens on a layer above its markers: hover where the marker is, then click."""
    locator.scroll_into_view_if_needed()
    box = locator.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(400)
    page.mouse.down()
    page.mouse.up()
    browser.wait_until_idle(page)


def _progress(page, state: str):
    """The progress bar's caption once it starts with `state` (finished, running...)."""
    return page.locator('[data-testid="stProgress"]').get_by_text(re.compile(rf"^{state} ·"))


def _train_once(page, *, reload: bool = False, timeout_s: float = 120) -> list[int]:
    """Press Start and sample the live curve's point count until the run ends.

    reload=True reloads the browser tab while it trains: the job must carry on and the
    page must find it again (the session id is in the URL).
    """
    page.get_by_role("button", name="Start training").click()
    _progress(page, "(queued|running)").first.wait_for(timeout=60_000)
    if reload:
        page.reload()
        page.get_by_role("heading", name="4. Train and watch").wait_for(timeout=90_000)
    counts, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline and _progress(page, "finished").count() == 0:
        counts.append(page.evaluate(LIVE_POINTS))
        page.wait_for_timeout(400)
    _progress(page, "finished").first.wait_for(timeout=10_000)
    browser.wait_until_idle(page)
    return counts


def test_train_journey(page, app_url):
    browser.open_registered_page(page, app_url, "train")
    assert "sid=" in page.url  # the session id rides in the URL so a reload re-attaches

    page.get_by_role("radio", name="Built-in spoken digits").click()
    browser.wait_until_idle(page)
    # enough training steps (batch 32) for the live curve to be sampled while it grows
    _set_number(page, "Clips per class (0 = all)", "60")
    page.get_by_text("600 clips in 10 classes").wait_for()
    epochs = page.get_by_role("slider", name="Epochs")
    epochs.focus()
    epochs.press("Home")  # the slider's minimum: one epoch
    browser.wait_until_idle(page)
    page.get_by_text("t-SNE map of the embeddings").click()  # a PCA map is enough here
    browser.wait_until_idle(page)
    members = page.get_by_role("slider", name="Ensemble members")
    assert members.get_attribute("aria-valuetext") == "3"  # the default recipe: three networks
    page.get_by_text(re.compile(r"\(3 members of [\d,]+\)")).wait_for()

    counts = _train_once(page)
    assert max(counts) > 0 and max(counts) > min(counts), counts  # the curve grew live
    page.get_by_role("heading", name="Confusion matrix: listen to your errors").wait_for()
    matrix = page.locator(".js-plotly-plot").filter(has_text="share of row").first
    k, true, predicted = matrix.evaluate(LAST_CELL)
    assert k >= 0
    _click(page, matrix.locator(".scatterlayer .point").nth(k))  # listen to that cell's clips
    cell = page.locator('[data-testid="stSelectbox"]').filter(has_text="Cell").locator("input")
    assert cell.input_value().startswith(f"true {true} → predicted {predicted} ·")
    assert page.locator("audio").count() >= 2  # the preview player and the cell's clips

    rate = page.get_by_role("slider", name="Learning rate")
    rate.focus()
    rate.press("ArrowRight")  # a second run with the next learning rate, one network
    browser.wait_until_idle(page)
    members.focus()
    members.press("Home")
    browser.wait_until_idle(page)
    assert members.get_attribute("aria-valuetext") == "1"
    assert page.get_by_text(re.compile(r"members of [\d,]+\)")).count() == 0
    sid = page.url.split("sid=")[1]
    _train_once(page, reload=True)
    assert page.url.split("sid=")[1] == sid  # the reloaded tab kept its runs
    page.get_by_text("Settings that differ between the chosen runs", exact=False).wait_for()
    page.get_by_role("heading", name="6. Compare runs").scroll_into_view_if_needed()
    browser.screenshot(page, "train-journey")
    assert browser.exception_texts(page) == []
