"""A student's journey on the Classify page, in a real browser.

The ready-made digits model names a built-in digit at once and states how well it does on
a voice it never heard beside new takes of voices it knows; the student uploads a take the
model never trained on, sees it named right with the top-k chart, then uploads a longer
recording and reads its timeline and segments.
"""

from __future__ import annotations

import re

import numpy as np
import soundfile as sf

from core import paths
from core.audio.io import load_audio
from core.models.card import read_model_card
from tests.e2e import browser
from tests.test_page_classify import _held_out_takes


def _upload(page, path) -> None:
    uploader = page.locator('[data-testid="stFileUploader"]').filter(has_text="Upload a sound file")
    uploader.locator('input[type="file"]').set_input_files(str(path))
    browser.wait_until_idle(page, timeout_ms=120_000)


def test_classify_journey(page, app_url, tmp_path):
    browser.open_registered_page(page, app_url, "classify")
    page.get_by_text("What the model sees").first.wait_for()
    page.get_by_text(re.compile(r"^0 with \d+% probability")).first.wait_for()  # 0 (george)

    card = read_model_card(paths.MODELS_DIR / "digits-cnn")
    metrics = page.locator('[data-testid="stMetric"]')
    unseen = metrics.filter(has_text="A speaker it never heard")
    known = metrics.filter(has_text="New takes of speakers it knows")
    assert f"{card.unseen.accuracy:.1%}" in unseen.inner_text()
    assert f"{card.known.accuracy:.1%}" in known.inner_text()
    page.get_by_text("How these figures were measured").click()
    page.get_by_text(re.compile(r"^per held-out speaker: george")).wait_for()

    page.get_by_text("Upload a file", exact=True).first.click()
    browser.wait_until_idle(page)
    digit = next(p for p in _held_out_takes() if p.stem.startswith("7_lucas_"))
    _upload(page, digit)
    page.get_by_text(re.compile(r"^7 with \d+% probability")).first.wait_for()
    page.get_by_text("Classes shown").wait_for()
    assert page.locator(".js-plotly-plot .barlayer").count() >= 1  # the top-k bars
    assert browser.exception_texts(page) == []

    # A longer recording: three digits with silence between them.
    rate = 8000
    digits = [load_audio(paths.DIGITS_DIR / f"{d}_jackson_20.wav").samples for d in (2, 5, 9)]
    gap = np.zeros(rate, np.float32)
    long_clip = np.concatenate([gap, digits[0], gap, digits[1], gap, digits[2], gap])
    long_path = tmp_path / "three_digits.wav"
    sf.write(long_path, long_clip, rate)
    _upload(page, long_path)
    page.get_by_text("Timeline: classify every part of the clip").wait_for()
    page.get_by_text("windows of").first.wait_for()
    page.get_by_text("Why this answer?").wait_for()
    page.get_by_text("Timeline: classify every part of the clip").scroll_into_view_if_needed()
    browser.screenshot(page, "classify-journey")
    assert browser.exception_texts(page) == []
