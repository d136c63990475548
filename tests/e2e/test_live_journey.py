"""Live listening in a real browser: Chromium streams a WAV file as its microphone.

Chromium's fake capture device (`--use-file-for-fake-audio-capture`) plays a file into
getUserMedia, so the whole path runs for real: WebRTC (Opus) to the server, streamlit-webrtc,
core.inference.streaming, the Live tabs. One journey says spoken digits made from the shipped recordings
and checks the digits the Classify page's Live tab hears; the other plays a synthesized
melody into the Music page's tuner and checks the notes.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import soundfile as sf

from core import paths
from core.audio.io import load_audio
from core.audio.levels import resample
from core.audio.synth import SynthConfig, render_notes
from core.inference.classifier import (
    classify_windows,
    find_segments,
    model_from_loaded_run,
    shipped_store,
)
from tests.e2e import browser

RATE = 48000  # what a microphone sends
# Words the shipped model hears clearly offline (a top probability near 0.8): WebRTC's Opus
# coding changes the audio a little, so a word the model only just recognises (0.65) can
# drop under the threshold on the way, and the journey is about the stream, not the model.
DIGIT_FILES = ("3_jackson_1", "0_george_5", "4_jackson_6", "1_george_4")
MELODY = [(60, 0, 3), (64, 3, 3), (67, 6, 3), (72, 9, 3), (69, 12, 3)]  # C4 E4 G4 C5 A4
MELODY_NOTES = ["C4", "E4", "G4", "C5", "A4"]
LIVE_ARGS = [
    "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
    "--use-fake-device-for-media-stream",
    # Host candidates as plain addresses (aiortc cannot resolve Chromium's mDNS names).
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--autoplay-policy=no-user-gesture-required",
]


def _spoken_digits() -> np.ndarray:
    """The digits with a second of silence between them, at the microphone's rate."""
    gap = np.zeros(RATE, np.float32)
    parts = [gap]
    for name in DIGIT_FILES:
        clip = load_audio(paths.DIGITS_DIR / f"{name}.wav", sample_rate=RATE)
        parts += [clip.samples, gap]
    return np.concatenate(parts)


def _melody() -> np.ndarray:
    config = SynthConfig(sample_rate=RATE, step_seconds=0.15, peak=0.5)
    return np.concatenate([render_notes(MELODY, config), np.zeros(RATE, np.float32)])


def _live_browser(browser_type, chromium_executable, wav):
    """A second Chromium whose microphone plays `wav`, from the session's one Playwright (two
    sync Playwrights in one thread refuse to start: the second sees the first's event loop)."""
    return browser_type.launch(
        executable_path=chromium_executable,
        args=[
            *browser.CHROMIUM_ARGS,
            *LIVE_ARGS,
            # The file loops: whenever the WebRTC connection is up, the whole sequence follows.
            f"--use-file-for-fake-audio-capture={wav}",
        ],
        headless=True,
    )


@pytest.fixture
def live_page_for(browser_instance, chromium_executable, tmp_path):
    opened = []

    def open_with(samples: np.ndarray):
        wav = tmp_path / "microphone.wav"
        sf.write(wav, samples, RATE, subtype="PCM_16")
        chromium = _live_browser(browser_instance.browser_type, chromium_executable, wav)
        context = chromium.new_context(viewport={"width": 1400, "height": 1100})
        context.grant_permissions(["microphone"])
        page = context.new_page()
        page.set_default_timeout(60_000)
        opened.append((chromium, context))
        return page

    yield open_with
    for chromium, context in opened:
        context.close()
        chromium.close()


def _start_microphone(page) -> None:
    frame = page.frame_locator('iframe[title*="webrtc"]').first
    frame.get_by_role("button", name=re.compile("start", re.I)).click()
    frame.get_by_role("button", name=re.compile("stop", re.I)).wait_for(timeout=60_000)


def _contains_cycle(items: list[str], cycle: list[str]) -> bool:
    """True when `items` holds the looped `cycle` in order, from any point of the loop."""
    n = len(cycle)
    for shift in range(n):
        rotated = cycle[shift:] + cycle[:shift]
        for i in range(len(items) - n + 1):
            if items[i : i + n] == rotated:
                return True
    return False


def _heard(page, label: str, cycle: list[str], timeout_s: float) -> list[str]:
    """The items of the "label: a · b · c" line once they hold the looped `cycle` (or at
    timeout)."""
    pattern = re.compile(rf"{label}:\s*(.*)")
    items: list[str] = []
    for _ in range(int(timeout_s * 2)):
        for text in page.locator('[data-testid="stMarkdownContainer"]').all_inner_texts():
            match = pattern.search(text)
            if match:
                items = [t.strip() for t in match.group(1).split("·") if t.strip()]
                items = [] if items == ["nothing yet"] or items == ["none yet"] else items
        if _contains_cycle(items, cycle):
            return items
        page.wait_for_timeout(500)
    return items


def test_spoken_digits_streamed_as_the_microphone_are_heard_in_order(
    live_page_for, app_url, tmp_path
):
    audio = _spoken_digits()
    model = model_from_loaded_run(shipped_store().load("digits-cnn"), origin="shipped")
    offline = classify_windows(model, resample(audio, RATE, model.sample_rate),
                               model.sample_rate, hop_seconds=0.25, trim_silence=True)  # fmt: skip
    expected = [s.label for s in find_segments(offline, threshold=0.6, smooth_windows=3)]
    truth = [name.split("_")[0] for name in DIGIT_FILES]
    assert len(expected) >= len(truth) - 1  # the model hears (nearly) every word offline

    page = live_page_for(audio)
    browser.open_registered_page(page, app_url, "classify")
    page.get_by_role("tab", name="Live").click()
    browser.wait_until_idle(page)
    _start_microphone(page)
    heard = _heard(page, "Heard so far", expected, timeout_s=2 * len(audio) / RATE + 30)
    browser.screenshot(page, "live-classify-journey")
    assert _contains_cycle(heard, expected), f"live {heard}, offline {expected}, spoken {truth}"
    assert len(set(expected) & set(truth)) >= len(truth) - 1
    page.get_by_text("Hearing").first.wait_for()
    assert browser.exception_texts(page) == []


def test_a_melody_streamed_as_the_microphone_reads_on_the_tuner(live_page_for, app_url):
    page = live_page_for(_melody())
    browser.open_registered_page(page, app_url, "music")
    page.get_by_role("radiogroup", name="Listen to").get_by_role("radio", name="Live").click()
    browser.wait_until_idle(page)
    _start_microphone(page)
    notes = _heard(page, "Notes held", MELODY_NOTES, timeout_s=40)
    browser.screenshot(page, "live-music-journey")
    assert _contains_cycle(notes, MELODY_NOTES), notes
    page.locator(".indicatorlayer").first.wait_for()  # the tuner's dial
    assert browser.exception_texts(page) == []
