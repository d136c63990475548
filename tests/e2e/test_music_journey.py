"""A student's journey on the Music analysis page, in a real browser.

Open a clip, play it with the click track, switch to the other metrical level and hear its
own click track, switch the spectrogram to a log-frequency scale, choose another family of
key profiles, open "Why this key?" (the opening / final bass), leave the view and come back
to the same family.
key profiles, open "Why this key?", compare pYIN with CREPE in the Pitch view, look at what the
network sees and says, and play the transcribed notes; start CREPE full on a worker process,
watch its progress beside the other tracks, and stop it.
"""

from __future__ import annotations

from tests.e2e import browser


def _choose_view(page, name: str) -> None:
    page.get_by_role("radiogroup", name="View").get_by_role("radio", name=name, exact=True).click()
    browser.wait_until_idle(page)


def test_music_journey(page, app_url):
    browser.open_registered_page(page, app_url, "music")
    select = page.locator('[data-testid="stSelectbox"]').filter(has_text="Built-in clip")
    select.locator("input").click()
    page.keyboard.type("trumpet")
    page.keyboard.press("Enter")
    browser.wait_until_idle(page)
    page.get_by_text("solo-trumpet-06.ogg", exact=False).first.wait_for()
    page.get_by_text("Tempo", exact=True).first.wait_for()

    _choose_view(page, "Rhythm")
    page.get_by_text("The clip with a click on every beat").wait_for()
    mix = page.locator("audio").last  # the first player is the clip itself
    assert page.locator("audio").count() >= 2
    mix.evaluate(
        "a => new Promise(r => a.readyState >= 1 ? r() : a.addEventListener('loadedmetadata', r))"
    )
    assert mix.evaluate("a => a.duration") > 5.0  # the whole 5.3 s clip, clicks mixed in
    mix.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("a => a.currentTime > 0.2", arg=mix.element_handle(), timeout=10_000)
    first_click_track = mix.get_attribute("src")

    # The other metrical level (double, half or a third): its own click track replaces the first.
    levels = page.get_by_role("radiogroup", name="Metrical level to click").get_by_role("radio")
    assert levels.count() == 2
    other_label = levels.nth(1).evaluate("r => r.closest('label').innerText").strip()
    levels.nth(1).click(force=True)
    browser.wait_until_idle(page)
    page.get_by_text(f"at {other_label}: do they line up?").wait_for()
    mix = page.locator("audio").last
    assert mix.get_attribute("src") != first_click_track
    mix.evaluate(
        "a => new Promise(r => a.readyState >= 1 ? r() : a.addEventListener('loadedmetadata', r))"
    )
    mix.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("a => a.currentTime > 0.2", arg=mix.element_handle(), timeout=10_000)
    browser.screenshot(page, "music-metrical-levels")

    _choose_view(page, "Spectrogram")
    page.locator('[data-testid="stRadio"]').get_by_text("log-frequency").click()
    browser.wait_until_idle(page)
    page.locator(".gtitle", has_text="Spectrogram (log)").wait_for()
    page.get_by_text("Δf between bins").wait_for()

    _choose_view(page, "Key")
    profiles = page.locator('[data-testid="stSelectbox"]').filter(has_text="Key profiles")
    profiles.locator("input").click()
    page.keyboard.type("Bellman")
    page.keyboard.press("Enter")
    browser.wait_until_idle(page)
    page.get_by_text("Bellman-Budge profiles)").first.wait_for()  # the key line names them
    page.get_by_text("Why this key?").click()
    page.locator(".gtitle", has_text="Correlation with the 24 major and minor keys").wait_for()
    page.locator(".gtitle", has_text="chroma profile").wait_for()
    page.get_by_text("the bass here opens on", exact=False).first.wait_for()  # the bass cues
    page.get_by_text("Why this key?").scroll_into_view_if_needed()
    browser.screenshot(page, "music-journey")
    # The chosen family outlives a visit to another view (the summary card's key uses it).
    _choose_view(page, "Waveform")
    _choose_view(page, "Key")
    page.get_by_text("Bellman-Budge profiles)").first.wait_for()

    # Pitch: pYIN (signal processing) beside CREPE tiny (a pretrained network) on one plot.
    _choose_view(page, "Pitch")
    page.locator(".gtitle", has_text="Pitch: pYIN, CREPE tiny").wait_for(timeout=120_000)
    page.get_by_text("agree within a quarter tone", exact=False).wait_for()
    page.locator(".gtitle", has_text="What CREPE tiny sees").wait_for()
    page.locator(".gtitle", has_text="What CREPE tiny says").wait_for()
    page.locator(".gtitle", has_text="Piano roll").wait_for()
    page.get_by_text("notes from CREPE tiny", exact=False).first.wait_for()
    page.get_by_text("The transcription played by the app's synth:").wait_for()
    players = page.locator("audio")
    notes = players.nth(players.count() - 2)  # then the clip + notes mix, last
    notes.scroll_into_view_if_needed()
    notes.evaluate(
        "a => new Promise(r => a.readyState >= 1 ? r() : a.addEventListener('loadedmetadata', r))"
    )
    assert abs(notes.evaluate("a => a.duration") - 5.33) < 0.2  # the notes span the clip
    notes.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("a => a.currentTime > 0.2", arg=notes.element_handle(), timeout=10_000)
    page.get_by_role("button", name="Download the notes (MIDI)").wait_for()
    browser.screenshot(page, "music-pitch")

    # CREPE full (about 48 s on this CPU) asks first, then runs on a worker process: its
    # progress shows while the quick tracks stay drawn, and Stop ends it.
    trackers = page.locator('[data-testid="stMultiSelect"]').filter(
        has_text="Pitch trackers to compare"
    )
    trackers.locator("input").click()
    page.keyboard.type("CREPE full")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    browser.wait_until_idle(page)
    page.get_by_role("button", name="Run CREPE full (about", exact=False).click()
    page.get_by_text("CREPE full on a worker", exact=False).wait_for(timeout=120_000)
    page.locator(".gtitle", has_text="Pitch: pYIN, CREPE tiny").wait_for()
    browser.screenshot(page, "music-pitch-worker")
    page.get_by_role("button", name="Stop", exact=True).first.click()
    page.get_by_text("CREPE full was stopped before it was done.").wait_for(timeout=60_000)
    page.get_by_role("button", name="Run CREPE full again").wait_for()
    assert browser.exception_texts(page) == []
