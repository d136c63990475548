"""A student's journey on the Train page, in a real browser.

Pick the built-in digits (a quick subset), train one epoch and watch the curve grow, see
the confusion matrix, train a second run and compare the two. And the live view pushed
(ui/train_push.py): its text and curves advance without a Streamlit rerun, and the results
appear at the end without a reload.
"""

from __future__ import annotations

import re
import time

from playwright.sync_api import Error as PlaywrightError

from tests.e2e import browser

# The pushed live view: a component's frame (ui/push_views/, look "training").
PUSHED = "train_progress"
LIVE = """() => {
  const root = document.querySelector('.train-progress');
  const fill = document.querySelector('.train-bar-fill');
  return {text: root.querySelector('.train-progress-text').textContent,
          points: Number(root.querySelector('.train-curves').dataset.points || 0),
          bar: fill.style.width};
}"""


PLOTTED_LIVE = """() => [...document.querySelectorAll('.js-plotly-plot')].some(
  p => (p.data || []).some(t => t.name === 'train (running)'))"""


def _pushed(page) -> dict | None:
    """What the pushed live view shows now (text, points drawn, bar width), or None when
    it is not on the page (not drawn yet, or gone once the job ended)."""
    frame = next((f for f in page.frames if PUSHED in f.url), None)
    if frame is None:
        return None
    try:
        return frame.evaluate(LIVE)
    except PlaywrightError:  # the frame went away while we asked: the page reran
        return None


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


def _watch_frames(page) -> tuple[list[float], list[tuple[float, bytes]]]:
    """From now on, the times of the browser's messages to Streamlit (rerun requests and
    more) and the server's messages to the browser with their bytes. Call it before the page
    opens: Playwright reports only websockets opened after."""
    sent: list[float] = []
    received: list[tuple[float, bytes]] = []

    def watch(socket) -> None:
        socket.on("framesent", lambda _: sent.append(time.monotonic()))
        socket.on(
            "framereceived",
            lambda payload: received.append(
                (time.monotonic(), payload if isinstance(payload, bytes) else payload.encode())
            ),
        )

    page.on("websocket", watch)
    return sent, received


def _drawn_since(received: list[tuple[float, bytes]], since: float, text: str) -> bool:
    """Whether the server sent `text` (a string of an element: protobuf keeps it in UTF-8)
    after `since`."""
    return any(text.encode() in payload for at, payload in received if at >= since)


def _digits(page, app_url: str, clips_per_class: int) -> None:
    """A new Train page with a subset of the built-in digits chosen."""
    browser.open_registered_page(page, app_url, "train")
    page.get_by_role("radio", name="Built-in spoken digits").click()
    browser.wait_until_idle(page)
    _set_number(page, "Clips per class (0 = all)", str(clips_per_class))
    page.get_by_text(f"{10 * clips_per_class} clips in 10 classes").wait_for()


def _wait_pushed(page, text: str, timeout_s: float = 60) -> dict:
    """Until the pushed view's text matches `text` (a regular expression); what it shows."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        shown = _pushed(page)
        if shown and re.search(text, shown["text"]):
            return shown
        page.wait_for_timeout(100)
    raise AssertionError(f"the pushed progress never read {text!r}: {_pushed(page)}")


def _train_once(page, *, reload: bool = False, timeout_s: float = 120) -> list[int]:
    """Press Start and sample the live curve's point count until the run ends.

    reload=True reloads the browser tab while it trains: the job must carry on and the
    page must find it again (the session id is in the URL).
    """
    page.get_by_role("button", name="Start training").click()
    _wait_pushed(page, r"^(queued|running) ·")
    if reload:
        page.reload()
        page.get_by_role("heading", name="4. Train and watch").wait_for(timeout=90_000)
    counts, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline and _progress(page, "finished").count() == 0:
        shown = _pushed(page)
        counts.append(shown["points"] if shown else -1)
        page.wait_for_timeout(400)
    _progress(page, "finished").first.wait_for(timeout=10_000)
    browser.wait_until_idle(page)
    return counts


def test_train_journey(page, app_url):
    # enough training steps (batch 32) for the live curve to be sampled while it grows
    _digits(page, app_url, 60)
    assert "sid=" in page.url  # the session id rides in the URL so a reload re-attaches
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


def test_the_live_view_is_pushed_without_reruns_and_the_results_follow_without_a_reload(
    page, app_url
):
    """While the job trains, the progress text, bar and curves advance in the pushed view,
    and the browser sends Streamlit no message; at the end sections
    4-6 rerun once by themselves and show the results, the data and settings sections above
    them are not run again."""
    sent, received = _watch_frames(page)
    _digits(page, app_url, 40)
    members = page.get_by_role("slider", name="Ensemble members")
    members.focus()
    members.press("Home")  # one network: quick, and its results show the confusion matrix
    browser.wait_until_idle(page)
    page.get_by_text("t-SNE map of the embeddings").click()
    browser.wait_until_idle(page)
    page.evaluate("() => { window.notReloaded = true; }")
    address = page.url
    assert _drawn_since(received, 0, "1. Data")  # the page's runs so far were whole
    page.get_by_role("button", name="Start training").click()
    _wait_pushed(page, r"^running ·", timeout_s=120)

    samples, began = [], time.monotonic()
    while _progress(page, "finished").count() == 0 and time.monotonic() - began < 180:
        shown = _pushed(page)
        if shown and shown["text"].startswith("running"):
            samples.append((time.monotonic(), shown))
            # The fallback's own widgets are not drawn meanwhile: no curves' figure, no bar.
            assert page.locator('[data-testid="stProgress"]').count() == 0
            assert page.evaluate(PLOTTED_LIVE) is False
        page.wait_for_timeout(300)
    _progress(page, "finished").first.wait_for(timeout=30_000)
    page.get_by_role("heading", name="Confusion matrix: listen to your errors").wait_for()
    assert page.evaluate("() => window.notReloaded === true") and page.url == address

    texts = [s["text"] for _, s in samples]
    points = [s["points"] for _, s in samples]
    percents = [int(re.search(r"(\d+)%", t).group(1)) for t in texts]
    assert len(set(texts)) >= 3, texts  # the text advanced, reading after reading
    assert percents == sorted(percents) and percents[-1] > percents[0], texts
    assert points == sorted(points) and points[-1] > points[0] >= 0, points
    assert len({s["bar"] for _, s in samples}) >= 3  # and the bar with it
    # While it trained the browser sent Streamlit nothing: a fragment polling every 2 s would
    # have sent one message per poll (and the sidebar's status is pushed too).
    first, last = samples[0][0], samples[-1][0]
    during = [t for t in sent if first <= t <= last]
    assert last - first > 4, texts
    assert during == [], (len(during), last - first)
    assert sent and received  # the frames were watched
    # The end reran sections 4-6 (their headings and results were sent), not sections 1-3.
    assert _drawn_since(received, last, "5. Results")
    assert _drawn_since(received, last, "6. Compare runs")
    assert not _drawn_since(received, last, "1. Data")
    assert not _drawn_since(received, last, "3. Hyperparameters")
    assert browser.exception_texts(page) == []


def test_a_browser_that_cannot_reach_the_pushed_view_gets_the_polled_one(page, app_url):
    """A proxy that blocks the route: the component reports it and the page polls instead."""
    page.route("**/audio-dl/train-progress*", lambda route: route.abort())
    try:
        _digits(page, app_url, 40)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text("this browser could not reach the pushed view").wait_for(timeout=60_000)
        _progress(page, "(queued|running)").first.wait_for(timeout=60_000)
        page.get_by_role("button", name="Stop").click()
        _progress(page, "stopped").first.wait_for(timeout=120_000)
        assert browser.exception_texts(page) == []
    finally:
        page.unroute("**/audio-dl/train-progress*")


TRIALS_PUSHED = """() => [...document.querySelectorAll('iframe')]
  .filter(f => f.src.includes('train_progress')).length"""


def test_a_sweeps_trials_are_pushed_and_the_table_follows_as_they_end(page, app_url):
    """Try several values: each queued or running trial gets a pushed view (no polling
    fragment, no plotly live curves meanwhile); the table reaches "2 of 2 ended" and section
    6 ranks the trials, without running the data and settings sections again."""
    _, received = _watch_frames(page)
    _digits(page, app_url, 20)
    members = page.get_by_role("slider", name="Ensemble members")
    members.focus()
    members.press("Home")
    browser.wait_until_idle(page)
    page.get_by_text("Try several values: a sweep of trainings").click()
    browser.wait_until_idle(page)
    rates = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Learning rates")
    rates.get_by_role("button", name=re.compile("Remove 0.01")).click()  # 1e-3 and 3e-3 left
    browser.wait_until_idle(page)
    page.get_by_text("2 trainings of").wait_for()
    queued = time.monotonic()
    page.get_by_role("button", name="Queue the sweep").click()
    page.get_by_text("Each trial's progress is pushed below").wait_for(timeout=120_000)
    seen = 0
    deadline = time.monotonic() + 240
    ended = page.get_by_text("Sweep: 2 of 2 trainings ended")
    while ended.count() == 0 and time.monotonic() < deadline:
        seen = max(seen, page.evaluate(TRIALS_PUSHED))
        assert page.evaluate(PLOTTED_LIVE) is False  # the polled curves are not drawn
        page.wait_for_timeout(300)
    ended.wait_for(timeout=30_000)
    assert seen >= 1  # a pushed view per trial still queued or running
    assert page.evaluate(TRIALS_PUSHED) == 0  # none once every trial ended
    page.get_by_text("Sweeps: which values did best").wait_for(timeout=30_000)
    assert _drawn_since(received, 0, "1. Data")
    assert not _drawn_since(received, queued, "1. Data")  # queueing and trials' ends
    assert browser.exception_texts(page) == []
