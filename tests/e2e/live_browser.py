"""A Chromium whose microphone is a WAV file, for the live journeys and the live benchmark.

Chromium's fake capture device (`--use-file-for-fake-audio-capture`) plays the file into
getUserMedia in a loop, so the whole live path runs for real: WebRTC (Opus) to the server,
streamlit-webrtc, core.inference.streaming, the Live tabs.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

from tests.e2e import browser

LIVE_ARGS = [
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",
    # Host candidates as plain addresses (aiortc cannot resolve Chromium's mDNS names).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]

# Records, in the frame that shows the answer (answer_frame), every moment the Live tab's
# answer changes on screen: the label's text (the pushed answer's value: Classify's label or
# the tuner's note; else the redrawn "Hearing" metric), the server's clock beside it (its
# data attributes, from ui/push_views/answer.js or ui.live_stream.answer_clock), the
# pushed tuner needle's cents (null without a needle or a note) and its meter's strongest
# pitch class. `t` is when the browser
# drew it: the first animation frame after the DOM changed, in ms since the epoch (the
# server's clock is the same machine's).
# __liveRedraws counts the answer's redraws that reached the page (new or not).
RECORD_ANSWERS_JS = """
() => {
  window.__liveAnswers = [];
  window.__liveRedraws = 0;
  window.__liveLongTaskMs = 0;  // the page's main thread busy > 50 ms at a time
  new PerformanceObserver((list) => {
    for (const task of list.getEntries()) window.__liveLongTaskMs += task.duration;
  }).observe({ type: "longtask" });
  let last = "";
  let lastDrawn = "";
  // textContent, not innerText: innerText lays the page out, on every mutation, and the
  // measurement would slow down what it measures.
  const read = () => {
    let value = document.querySelector(".live-answer-value");
    if (!value) {
      const metric = Array.from(document.querySelectorAll('[data-testid="stMetric"]'))
        .find((m) => m.textContent.includes("Hearing"));
      value = metric && metric.querySelector('[data-testid="stMetricValue"]');
    }
    const clock = document.querySelector(".live-answer-clock");
    const stamped = clock && clock.dataset.answers !== undefined;
    const needle = document.querySelector(".live-answer-needle");
    const meter = document.querySelector(".live-answer-meter");
    return [value ? value.textContent.trim() : null, stamped ? { ...clock.dataset } : null,
            needle ? needle.dataset.cents || null : null,
            meter ? meter.dataset.strongest || null : null];
  };
  new MutationObserver(() => {
    const [label, clock, cents, strongest] = read();
    if (clock && clock.drawnAt !== lastDrawn) {
      lastDrawn = clock.drawnAt;
      window.__liveRedraws += 1;
    }
    const key = `${label}|${clock ? clock.answers : ""}`;
    if (key === last) return;
    last = key;
    requestAnimationFrame(() => {
      const t = performance.timeOrigin + performance.now();
      window.__liveAnswers.push({ t, label, clock, cents, strongest });
    });
  }).observe(document.body, { subtree: true, childList: true, characterData: true,
                             attributes: true });
}
"""


def launch(browser_type, chromium_executable: str, wav: Path):
    """A Chromium whose microphone plays `wav` (looped), from an existing sync Playwright (two
    sync Playwrights in one thread refuse to start: the second sees the first's event loop)."""
    return browser_type.launch(
        executable_path=chromium_executable,
        args=[*browser.CHROMIUM_ARGS, *LIVE_ARGS, f"--use-file-for-fake-audio-capture={wav}"],
        headless=True,
    )


def new_live_page(chromium, *, timeout_ms: int = 60_000):
    """A page with the microphone granted."""
    context = chromium.new_context(viewport={"width": 1400, "height": 1100})
    context.grant_permissions(["microphone"])
    page = context.new_page()
    page.set_default_timeout(timeout_ms)
    return page


def start_microphone(page) -> None:
    """Press the streamer's START and wait until it offers STOP (the connection is up)."""
    frame = page.frame_locator('iframe[title*="webrtc"]').first
    frame.get_by_role("button", name=re.compile("start", re.I)).click()
    frame.get_by_role("button", name=re.compile("stop", re.I)).wait_for(timeout=60_000)


def stop_microphone(page) -> None:
    frame = page.frame_locator('iframe[title*="webrtc"]').first
    frame.get_by_role("button", name=re.compile("stop", re.I)).click()
    frame.get_by_role("button", name=re.compile("start", re.I)).wait_for(timeout=60_000)


def answer_frame(page, *, timeout_ms: int = 60_000):
    """The frame that shows the live answer with its clock: the pushed answer's component
    (an iframe, ui/push_views/answer.js) or the page itself when the page redraws the
    answer (ui.live_stream's fallback). Waits until an answer has been stamped."""
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        for frame in page.frames:
            try:
                if frame.query_selector(".live-answer-clock[data-answers]") is not None:
                    return frame
            except Exception:  # a frame detached while we looked
                continue
        page.wait_for_timeout(100)
    raise TimeoutError("no live answer with its clock appeared")


def answer_is_pushed(frame) -> bool:
    """True when the answer is the pushed component, not the page's redrawn metric."""
    return frame.query_selector(".live-answer-value") is not None


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and all its threads so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid: int, seconds: float) -> float:
    """The share of one core a process used over the next `seconds` (0.25 = a quarter)."""
    cpu, wall = process_cpu_seconds(pid), time.perf_counter()
    time.sleep(seconds)
    return (process_cpu_seconds(pid) - cpu) / (time.perf_counter() - wall)
