"""A student's journey on the Reinforcement learning page, in a real browser.

Run the bandit, train Q-learning for a few hundred episodes, play the melody it writes; then
make the keys slippery, train Q-learning in that world and compare it with value iteration's
optimum, and play one episode of the optimal policy.
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

    # 4. under uncertainty: slip 0.2 -> 0.25 with the keyboard, then learn from samples
    page.get_by_role(
        "heading", name="4. Under uncertainty", exact=False
    ).scroll_into_view_if_needed()
    page.get_by_text("it has not played yet", exact=False).wait_for()
    slip = page.get_by_role("slider", name="Slip probability")
    slip.focus()
    slip.press("ArrowRight")
    browser.wait_until_idle(page)
    assert slip.get_attribute("aria-valuetext") == "0.25"
    episodes = page.get_by_role("slider", name="Episodes to learn")
    episodes.focus()
    episodes.press("Home")  # 500 episodes
    browser.wait_until_idle(page)
    page.get_by_role("button", name="Train Q-learning").click()
    browser.wait_until_idle(page)
    page.get_by_text("greedy policy after 500 episodes", exact=False).wait_for()
    page.locator(".gtitle", has_text="against the optimum").wait_for()
    page.get_by_text("optimum by value iteration", exact=False).first.wait_for()
    page.get_by_text("Value iteration: V*(s) and its choice").wait_for()
    page.get_by_text("Q-learning: max Q(s, ·) and its choice").wait_for()

    page.get_by_role("button", name="Play the optimal policy once").click()
    browser.wait_until_idle(page)
    page.get_by_text("One episode (", exact=False).wait_for()
    episode = page.locator("audio").last
    episode.evaluate(
        "a => new Promise(r => a.readyState >= 1 ? r() : a.addEventListener('loadedmetadata', r))"
    )
    assert episode.evaluate("a => a.duration") > 0.5
    page.get_by_text("Value iteration: V*(s) and its choice").scroll_into_view_if_needed()
    browser.screenshot(page, "reinforce-journey")
    assert browser.exception_texts(page) == []
