"""Live listening in a real browser: from sound reaching the server to the label on screen.

`python -m tests.benchmarks live_browser` (about 2 minutes; needs Chromium). A real
`streamlit run dashboard.py` and a Chromium whose microphone plays spoken digits from the
shipped recordings (looped); the Classify page's Live tab streams them into the shipped model
at hop 250 ms. Beside the label the page keeps the server's clock of the newest answer (when
its sound reached the server, when it was ready, when it was sent: the pushed answer's
component ui/live_answer/index.html, or ui.live_stream.answer_clock when the page redraws the
answer itself); a MutationObserver in the frame that shows it records when the label's text
changes on screen (the animation frame after the change; same machine, same clock). The load
average is printed beside the figures: the machine is shared. Printed:

- label latency: each change of the label ("silence" -> "3" -> "silence" ...) on screen,
  minus when the sound of the answer that first said it reached the server. Goal: p95 <= 300 ms.
- answer latency: the same for every new answer drawn (also those that keep the label), and
  how many answers were replaced by a newer one before they were drawn.
- server CPU: the whole server process (WebRTC, decoding, analysis, page redraws) over the
  streaming time, and over as long with the page open but the microphone off. Goal: <= 25 %
  of one core per stream.

BENCH_LIVE_BROWSER_SECONDS (default 45) sets how long the microphone streams.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from core import paths
from core.audio.io import load_audio
from tests.e2e import browser, live_browser

MIC_RATE = 48000
WORDS = ("6_jackson_7", "3_jackson_1", "0_george_5", "4_jackson_6", "1_george_4", "7_george_2")
IDLE_SECONDS = 10.0
# The page's main thread busy > 50 ms at a time (the answer's frame, when it is the pushed
# component, shares that thread: its label waits for them).
PAGE_LONG_TASKS_JS = """
() => {
  window.__pageLongTaskMs = 0;
  new PerformanceObserver((list) => {
    for (const task of list.getEntries()) window.__pageLongTaskMs += task.duration;
  }).observe({ type: "longtask" });
}
"""


def spoken_digits() -> np.ndarray:
    """The words with 0.8 s of silence after each, at the microphone's rate."""
    gap = np.zeros(int(0.8 * MIC_RATE), np.float32)
    parts = []
    for name in WORDS:
        parts += [load_audio(paths.DIGITS_DIR / f"{name}.wav", sample_rate=MIC_RATE).samples, gap]
    return np.concatenate(parts)


def latencies(records: list[dict]) -> dict[str, np.ndarray]:
    """From the page's records {t, label, clock}, in ms: "label" (sound -> label change on
    screen), "answer" (sound -> each new answer on screen) and that split into "analysis"
    (sound -> answer ready), "wait" (ready -> the next redraw ran on the server) and "page"
    (that redraw -> on screen: the websocket and the browser)."""
    parts = ("analysis", "wait", "page")
    keys = ("label", "answer", *parts, *(f"label_{part}" for part in parts))
    out: dict[str, list[float]] = {k: [] for k in keys}
    shown: set[int] = set()
    previous_label = None
    for i, record in enumerate(records):
        clock = record["clock"]
        if clock is None:
            continue
        answers = int(clock["answers"])
        heard, ready, drawn = (1000 * float(clock[k]) for k in ("heardAt", "readyAt", "drawnAt"))
        if answers not in shown:
            shown.add(answers)
            out["answer"].append(record["t"] - heard)
            out["analysis"].append(ready - heard)
            out["wait"].append(drawn - ready)
            out["page"].append(record["t"] - drawn)
        label = record["label"]
        if label != previous_label and previous_label is not None and label not in (None, "…"):
            # The clock drawn with this label (the same redraw, or the next record if the
            # label's element was updated a moment before the clock's).
            for later in records[i : i + 3]:
                shown_clock = later["clock"]
                if shown_clock is not None and shown_clock["headline"] == label:
                    began, ready, drawn = (
                        1000 * float(shown_clock[k])
                        for k in ("headlineHeardAt", "readyAt", "drawnAt")
                    )
                    out["label"].append(record["t"] - began)
                    # The same split for the label's changes alone (the answer drawn with
                    # it: its first, unless the screen missed that one).
                    out["label_analysis"].append(ready - began)
                    out["label_wait"].append(drawn - ready)
                    out["label_page"].append(record["t"] - drawn)
                    break
        previous_label = label
    result = {k: np.asarray(v) for k, v in out.items()}
    result["answers"] = np.asarray(sorted(shown))
    return result


def _percentiles(values: np.ndarray) -> str:
    if not values.size:
        return "no samples"
    p50, p95 = np.percentile(values, [50, 95])
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {values.max():.0f} ms ({values.size} samples)"


def main() -> None:
    from playwright.sync_api import sync_playwright

    chromium_executable = browser.chromium_path()
    if chromium_executable is None:
        raise RuntimeError("Chromium not found (install Debian's `chromium`)")
    seconds = float(os.environ.get("BENCH_LIVE_BROWSER_SECONDS", "45"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wav = root / "microphone.wav"
        sf.write(wav, spoken_digits(), MIC_RATE, subtype="PCM_16")
        env = dict(os.environ)
        env.update(
            AUDIO_DL_RUNS_DIR=str(root / "runs"),
            AUDIO_DL_CACHE_DIR=str(root / "cache"),
            AUDIO_DL_DEVICE="cpu",
            PYTHONUNBUFFERED="1",
        )
        server_log = root / "server.log"
        server, url = browser.start_server(env, server_log)
        try:
            with sync_playwright() as playwright:
                chromium = live_browser.launch(playwright.chromium, chromium_executable, wav)
                page = live_browser.new_live_page(chromium)
                browser.open_registered_page(page, url, "classify")
                page.get_by_role("tab", name="Live").click()
                browser.wait_until_idle(page)

                cpu0, wall0 = live_browser.process_cpu_seconds(server.pid), time.perf_counter()
                page.wait_for_timeout(IDLE_SECONDS * 1000)
                idle_cpu = (live_browser.process_cpu_seconds(server.pid) - cpu0) / (
                    time.perf_counter() - wall0
                )

                live_browser.start_microphone(page)
                answers_frame = live_browser.answer_frame(page)
                pushed = live_browser.answer_is_pushed(answers_frame)
                answers_frame.evaluate(live_browser.RECORD_ANSWERS_JS)
                load_before = os.getloadavg()[0]
                page.evaluate(PAGE_LONG_TASKS_JS)
                cpu0, wall0 = live_browser.process_cpu_seconds(server.pid), time.perf_counter()
                page.wait_for_timeout(seconds * 1000)
                streaming_cpu = (live_browser.process_cpu_seconds(server.pid) - cpu0) / (
                    time.perf_counter() - wall0
                )
                records = answers_frame.evaluate("window.__liveAnswers")
                redraws = answers_frame.evaluate("window.__liveRedraws")
                long_tasks = page.evaluate("window.__pageLongTaskMs") / 1000
                errors = browser.exception_texts(page)
                live_browser.stop_microphone(page)
                chromium.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
            log = server_log.read_text()

    ms = latencies(records)
    answers = ms["answers"]
    computed = int(answers[-1] - answers[0] + 1) if answers.size else 0
    labels = [r["label"] for r in records]
    changes = sum(1 for a, b in zip(labels, labels[1:], strict=False) if a != b)
    how = "pushed (ui/live_push.py)" if pushed else "redrawn by a fragment (no push route)"
    print(
        f"the answer was {how}; load average {load_before:.1f} when streaming began, "
        f"{os.getloadavg()[0]:.1f} at the end (2 cores)"
    )
    print(
        f"streamed {seconds:.0f} s of spoken digits from Chromium's fake microphone: "
        f"{computed} answers computed ({seconds / 0.25:.0f} expected at hop 250 ms), "
        f"{answers.size} drawn, {changes} label changes; the answer redrawn "
        f"{redraws / seconds:.1f} times a second (pushed: once per new answer)"
    )
    print(
        f"  sound at the server -> label on screen: {_percentiles(ms['label'])} "
        "(goal p95 <= 300 ms)"
    )
    for part, what in (
        ("label_analysis", "sound -> answer ready"),
        ("label_wait", "ready -> sent / redrawn"),
        ("label_page", "sent / redrawn -> on screen"),
    ):
        print(f"    {what}: {_percentiles(ms[part])}")
    print(f"  sound at the server -> each new answer on screen: {_percentiles(ms['answer'])}")
    for part, what in (
        ("analysis", "sound -> answer ready"),
        ("wait", "ready -> sent / redrawn"),
        ("page", "sent / redrawn -> on screen"),
    ):
        print(f"    {what}: {_percentiles(ms[part])}")
    print(
        f"  server CPU: streaming {100 * streaming_cpu:.1f} % of one core (goal <= 25 %), "
        f"page open without the microphone {100 * idle_cpu:.1f} %"
    )
    busy = 100 * long_tasks / seconds
    print(f"  the browser's main thread in long tasks (> 50 ms): {busy:.0f} % of the time")
    if errors:
        print(f"  the page showed exceptions: {errors}")
    warnings = [line for line in log.splitlines() if "WARNING" in line or "Error" in line]
    if warnings:
        print(f"  server log: {len(warnings)} warnings, the last: {warnings[-1][:200]}")


if __name__ == "__main__":
    main()
