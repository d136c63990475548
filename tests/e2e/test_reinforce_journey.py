"""A student's journey on the Reinforcement learning page, in a real browser.

Run the bandit, train Q-learning for a few hundred episodes, play the melody it writes.
"""

from __future__ import annotations

from tests.e2e import browser


def test_reinforce_journey(page, app_url):
    browser.open_registered_page(page, app_url, "reinforce")

    page.get_by_role("button", name="Run the bandit").click()
    browser.wait_until_idle(page)
    page.get_by_text("Cumulative regret (lower is better)").first.wait_for()
    page.get_by_text("After 1000 pulls", exact=False).wait_for()

    page.get_by_text("Greedy melody after 0 episodes", exact=False).wait_for()
    page.get_by_role("button", name="Train", exact=True).click()
    browser.wait_until_idle(page)
    page.get_by_text("Greedy melody after 300 episodes", exact=False).wait_for()
    page.locator(".gtitle", has_text="Episode return").first.wait_for()
    page.locator(".gtitle", has_text="Q-table along the melody").wait_for()

    melody = page.locator("audio").first
    melody.evaluate(
        "a => new Promise(r => a.readyState >= 1 ? r() : a.addEventListener('loadedmetadata', r))"
    )
    assert melody.evaluate("a => a.duration") > 1.0  # eight steps of 0.25 s
    melody.evaluate("a => { a.muted = true; return a.play(); }")
    page.wait_for_function("a => a.currentTime > 0.2", arg=melody.element_handle(), timeout=10_000)
    browser.screenshot(page, "reinforce-journey")
    assert browser.exception_texts(page) == []
