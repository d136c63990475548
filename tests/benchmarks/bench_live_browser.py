"""Live listening in a real browser: from sound reaching the server to the label on screen.

`python -m tests.benchmarks live_browser` (about 4 minutes; needs Chromium). A real
`streamlit run dashboard.py` and a Chromium whose microphone plays spoken digits from the
shipped recordings (looped); the Classify page's Live tab streams them into the shipped model
at hop 250 ms. Beside the label the page keeps the server's clock of the newest answer (when
its sound reached the server, when it was ready, when it was sent: the pushed answer's
component ui/push_views/answer.js, or ui.live_stream.answer_clock when the page redraws the
answer itself); a MutationObserver in the frame that shows it records when the label's text
changes on screen (the animation frame after the change; same machine, same clock). The load
average is printed beside the figures: the machine is shared. Printed:

- label latency: each change of the label ("silence" -> "3" -> "silence" ...) on screen,
  minus when the sound of the answer that first said it reached the server. Goal: p95 <= 300 ms.
- answer latency: the same for every new answer drawn (also those that keep the label), and
  how many answers were replaced by a newer one before they were drawn.
- each split in parts (PARTS): sound -> answer ready; ready -> sent (for a pushed answer: the
  worker tells the route, the event loop runs it, or the answer waits for the browser's next
  poll); sent -> on screen (the reply's first and last byte in Chromium, Resource Timing;
  the frame's JavaScript reads it, which waits for the page's main thread; drawn).
- server CPU: the whole server process (WebRTC, decoding, analysis, page redraws) over the
  streaming time, and over as long with the page open but the microphone off. Goal: <= 25 %
  of one core per stream.

BENCH_LIVE_BROWSER_SECONDS (default 45) sets how long the microphone streams;
BENCH_LIVE_BROWSER_GIL_MS (default "5,1") the servers run one after the other, each with that
AUDIO_DL_LIVE_GIL_SWITCH_MS (5 = Python's own), printed side by side at the end;
BENCH_LIVE_BROWSER_PAGE=music measures the Music tab's pushed tuner needle instead (a
synthesized melody; the label is the note).
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


def melody() -> np.ndarray:
    """The tuner journey's melody (C4 E4 G4 C5 A4, 0.45 s a note) and a second of silence."""
    from core.audio.synth import SynthConfig, render_notes

    notes = [(60, 0, 3), (64, 3, 3), (67, 6, 3), (72, 9, 3), (69, 12, 3)]
    tune = render_notes(notes, SynthConfig(sample_rate=MIC_RATE, step_seconds=0.15, peak=0.5))
    return np.concatenate([tune, np.zeros(MIC_RATE, np.float32)])


def spoken_digits() -> np.ndarray:
    """The words with 0.8 s of silence after each, at the microphone's rate."""
    gap = np.zeros(int(0.8 * MIC_RATE), np.float32)
    parts = []
    for name in WORDS:
        parts += [load_audio(paths.DIGITS_DIR / f"{name}.wav", sample_rate=MIC_RATE).samples, gap]
    return np.concatenate(parts)


# BENCH_LIVE_BROWSER_PAGE: what the microphone plays and where: (sound, its name, page, how to
# reach the Live view, answers a second). The tuner answers every 100 ms.
LIVE_VIEWS = {
    "classify": (spoken_digits, "spoken digits", "tab", 4.0),
    "music": (melody, "a synthesized melody", "radio", 10.0),
}


# The parts of "answer ready -> on screen" when the answer is pushed (the reply's poll stamps
# and the component's receivedAt): (name, from, to) over the clock's fields. "poll" is the
# wait for the browser's next long poll when the answer was ready before the poll came.
PUSH_PARTS = (
    ("notice", "readyAt", "notifiedAt"),  # the worker tells the route (its lock, the GIL)
    ("loop", "notifiedAt", "wokeAt"),  # the server's event loop runs the route again
    ("poll", "readyAt", "arrivedAt"),  # the answer waited for the browser's next poll
    ("reply", "wokeAt", "drawnAt"),  # the reply built (drawnAt = sentAt)
    ("network", "drawnAt", "receivedAt"),  # socket, Chromium's network and main thread
    ("first byte", "drawnAt", "responseStartAt"),  # the reply's first byte in Chromium
    ("last byte", "responseStartAt", "responseEndAt"),
    ("main thread", "responseEndAt", "receivedAt"),  # the frame's JavaScript ran
)
PARTS = ("analysis", "wait", "page", *(name for name, _, _ in PUSH_PARTS), "draw")


def _split(record: dict, clock: dict, began: float) -> dict[str, float]:
    """One drawn answer's latency (ms from `began`, the sound's arrival) and its parts."""
    stamp = {k: 1000 * float(v) for k, v in clock.items() if _number(v)}
    parts = {
        "latency": record["t"] - began,
        "analysis": stamp["readyAt"] - began,
        "wait": stamp["drawnAt"] - stamp["readyAt"],
        "page": record["t"] - stamp["drawnAt"],
    }
    for name, first, last in PUSH_PARTS:
        if first in stamp and last in stamp:
            parts[name] = max(0.0, stamp[last] - stamp[first])
    if "receivedAt" in stamp:
        parts["draw"] = record["t"] - stamp["receivedAt"]
    return parts


def _number(value) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def latencies(records: list[dict]) -> dict[str, np.ndarray]:
    """From the page's records {t, label, clock}, in ms: "label" (sound -> label change on
    screen), "answer" (sound -> each new answer on screen) and each split into PARTS:
    "analysis" (sound -> answer ready), "wait" (ready -> sent or redrawn on the server),
    "page" (that -> on screen: the websocket or the fetch, and the browser); for a pushed
    answer "wait" and "page" in finer parts (PUSH_PARTS, "draw": the reply read -> on
    screen). Keys "label_<part>" and "<part>"."""
    out: dict[str, list[float]] = {}
    shown: set[int] = set()
    previous_label = None

    def add(prefix: str, parts: dict[str, float]) -> None:
        for name, value in parts.items():
            key = f"{prefix}{name}" if name != "latency" else (prefix.rstrip("_") or "answer")
            out.setdefault(key, []).append(value)

    for i, record in enumerate(records):
        clock = record["clock"]
        if clock is None:
            continue
        answers = int(clock["answers"])
        if answers not in shown:
            shown.add(answers)
            add("", _split(record, clock, 1000 * float(clock["heardAt"])))
        label = record["label"]
        if label != previous_label and previous_label is not None and label not in (None, "…"):
            # The clock drawn with this label (the same redraw, or the next record if the
            # label's element was updated a moment before the clock's).
            for later in records[i : i + 3]:
                shown_clock = later["clock"]
                if shown_clock is not None and shown_clock["headline"] == label:
                    began = 1000 * float(shown_clock["headlineHeardAt"])
                    add("label_", _split(record, shown_clock, began))
                    break
        previous_label = label
    result = {k: np.asarray(v) for k, v in out.items()}
    for key in ("label", "answer", *PARTS, *(f"label_{part}" for part in PARTS)):
        result.setdefault(key, np.asarray([]))
    result["answers"] = np.asarray(sorted(shown))
    return result


def _percentiles(values: np.ndarray) -> str:
    if not values.size:
        return "no samples"
    p50, p95 = np.percentile(values, [50, 95])
    return f"p50 {p50:.0f} ms, p95 {p95:.0f} ms, max {values.max():.0f} ms ({values.size} samples)"


def _p95(values: np.ndarray) -> str:
    return f"{np.percentile(values, 95):.0f}" if values.size else "-"


PART_NAMES = {
    "analysis": "sound -> answer ready",
    "wait": "ready -> sent / redrawn",
    "notice": "  ready -> the worker told the route",
    "loop": "  told -> the event loop ran the route (its delay)",
    "poll": "  ready -> the browser's next poll came (ready before it)",
    "reply": "  route ran -> reply sent",
    "page": "sent / redrawn -> on screen",
    "network": "  sent -> reply read in the browser",
    "first byte": "    sent -> its first byte in Chromium",
    "last byte": "    first -> last byte",
    "main thread": "    last byte -> read by the frame's JavaScript (the page's main thread)",
    "draw": "  read -> on screen",
}


def stream_once(seconds: float, gil_switch_ms: str, view: str = "classify") -> dict:
    """One server (AUDIO_DL_LIVE_GIL_SWITCH_MS=gil_switch_ms) and one Chromium streaming into
    a Live view (LIVE_VIEWS: the Classify tab's digits, the Music tuner's melody) for
    `seconds`: the page's records and the CPU figures."""
    sound, _, reach, _ = LIVE_VIEWS[view]
    from playwright.sync_api import sync_playwright

    chromium_executable = browser.chromium_path()
    if chromium_executable is None:
        raise RuntimeError("Chromium not found (install Debian's `chromium`)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wav = root / "microphone.wav"
        sf.write(wav, sound(), MIC_RATE, subtype="PCM_16")
        env = dict(os.environ)
        env.update(
            AUDIO_DL_RUNS_DIR=str(root / "runs"),
            AUDIO_DL_CACHE_DIR=str(root / "cache"),
            AUDIO_DL_DEVICE="cpu",
            AUDIO_DL_LIVE_GIL_SWITCH_MS=gil_switch_ms,
            PYTHONUNBUFFERED="1",
        )
        server_log = root / "server.log"
        server, url = browser.start_server(env, server_log)
        try:
            with sync_playwright() as playwright:
                chromium = live_browser.launch(playwright.chromium, chromium_executable, wav)
                page = live_browser.new_live_page(chromium)
                browser.open_registered_page(page, url, view)
                if reach == "tab":
                    page.get_by_role("tab", name="Live").click()
                else:
                    listen = page.get_by_role("radiogroup", name="Listen to")
                    listen.get_by_role("radio", name="Live").click()
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
    return {
        "records": records,
        "redraws": redraws,
        "pushed": pushed,
        "load": (load_before, os.getloadavg()[0]),
        "streaming_cpu": streaming_cpu,
        "idle_cpu": idle_cpu,
        "long_tasks": long_tasks,
        "errors": errors,
        "log": log,
    }


def report(
    run: dict, seconds: float, gil_switch_ms: str, view: str = "classify"
) -> dict[str, np.ndarray]:
    """Print one run's figures; returns its latencies."""
    _, heard, _, per_second = LIVE_VIEWS[view]
    ms = latencies(run["records"])
    answers = ms["answers"]
    computed = int(answers[-1] - answers[0] + 1) if answers.size else 0
    labels = [r["label"] for r in run["records"]]
    changes = sum(1 for a, b in zip(labels, labels[1:], strict=False) if a != b)
    how = "pushed (ui/live_push.py)" if run["pushed"] else "redrawn by a fragment (no push route)"
    load_before, load_after = run["load"]
    print(
        f"GIL switch {gil_switch_ms} ms while streaming; the answer was {how}; load average "
        f"{load_before:.1f} when streaming began, {load_after:.1f} at the end (2 cores)"
    )
    print(
        f"streamed {seconds:.0f} s of {heard} from Chromium's fake microphone into {view}: "
        f"{computed} answers computed ({seconds * per_second:.0f} expected), "
        f"{answers.size} drawn, {changes} label changes; the answer redrawn "
        f"{run['redraws'] / seconds:.1f} times a second (pushed: once per new answer)"
    )
    for prefix, what in (("label", "label on screen"), ("answer", "each new answer on screen")):
        goal = " (goal p95 <= 300 ms)" if prefix == "label" else ""
        print(f"  sound at the server -> {what}: {_percentiles(ms[prefix])}{goal}")
        for part in PARTS:
            key = f"label_{part}" if prefix == "label" else part
            if ms[key].size:
                print(f"    {PART_NAMES[part]}: {_percentiles(ms[key])}")
    print(
        f"  server CPU: streaming {100 * run['streaming_cpu']:.1f} % of one core (goal <= 25 %), "
        f"page open without the microphone {100 * run['idle_cpu']:.1f} %"
    )
    busy = 100 * run["long_tasks"] / seconds
    print(f"  the browser's main thread in long tasks (> 50 ms): {busy:.0f} % of the time")
    if run["errors"]:
        print(f"  the page showed exceptions: {run['errors']}")
    warnings = [line for line in run["log"].splitlines() if "WARNING" in line or "Error" in line]
    if warnings:
        print(f"  server log: {len(warnings)} warnings, the last: {warnings[-1][:200]}")
    return ms


def main() -> None:
    seconds = float(os.environ.get("BENCH_LIVE_BROWSER_SECONDS", "45"))
    # Python's own GIL switch interval beside the streams' default, run after run.
    settings = os.environ.get("BENCH_LIVE_BROWSER_GIL_MS", "5,1").split(",")
    view = os.environ.get("BENCH_LIVE_BROWSER_PAGE", "classify")
    if view not in LIVE_VIEWS:
        raise ValueError(f"BENCH_LIVE_BROWSER_PAGE must be one of {', '.join(LIVE_VIEWS)}")
    rows = []
    for gil_switch_ms in [s.strip() for s in settings if s.strip()]:
        run = stream_once(seconds, gil_switch_ms, view)
        ms = report(run, seconds, gil_switch_ms, view)
        rows.append((gil_switch_ms, run, ms))
    print("\nside by side (ms; label = sound at the server -> label on screen):")
    parts = ("analysis", "loop", "poll", "first byte", "main thread", "draw")
    print(
        "| GIL switch | load | label p50 / p95 / max | label p95 split: "
        + ", ".join(parts)
        + " | answers drawn | server CPU | long tasks |"
    )
    print("| --- " * 7 + "|")
    for gil_switch_ms, run, ms in rows:
        label = ms["label"]
        figures = (
            " / ".join(f"{v:.0f}" for v in (*np.percentile(label, [50, 95]), label.max()))
            if label.size
            else "-"
        )
        split = ", ".join(_p95(ms[f"label_{part}"]) for part in parts)
        answers = ms["answers"]
        computed = int(answers[-1] - answers[0] + 1) if answers.size else 0
        print(
            f"| {gil_switch_ms} ms | {run['load'][0]:.0f}-{run['load'][1]:.0f} | {figures} | "
            f"{split} | {answers.size} of {computed} | {100 * run['streaming_cpu']:.1f} % | "
            f"{100 * run['long_tasks'] / seconds:.0f} % |"
        )


if __name__ == "__main__":
    main()
