"""A student's journey on the Network builder, in a real browser.

Load the MFCC MLP preset, add a layer and see the parameter count and the graph's shapes
update, then play the playground for a few seconds and watch the epoch counter run; find
the playground's data choice still there after a visit to Home; run the "Deep enough"
experiment on XOR (no hidden layer stays near chance) and follow one spoken digit through the
shipped model layer by layer.
"""

from __future__ import annotations

import re

from tests.e2e import browser


def _metric(page, label: str) -> str:
    metric = page.locator('[data-testid="stMetric"]', has_text=label).first
    return metric.locator('[data-testid="stMetricValue"]').inner_text()


def _choose(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=re.compile(label)).first.click()
    page.get_by_role("option", name=option).first.click()
    browser.wait_until_idle(page)


def test_network_journey(page, app_url):
    browser.open_registered_page(page, app_url, "network")

    # load a preset: the MLP on 40 MFCC statistics
    _choose(page, "Preset", "mlp_mfcc: MLP on MFCC statistics")
    page.get_by_role("button", name="Load preset").click()
    browser.wait_until_idle(page)
    layers = page.get_by_role("radiogroup", name=re.compile("Layers"))
    layers.get_by_text("1. Linear(out_features=128)").wait_for()
    assert _metric(page, "Parameters") == "14,154"

    # add a Linear (64 outputs by default) after layer 1: 128·64 + 64 more parameters,
    # and layer 2 of the MLP now receives 64 inputs instead of 128
    _choose(page, "New layer", "Linear")
    page.get_by_role("button", name="Add after").click()
    browser.wait_until_idle(page)
    layers.get_by_text("2. Linear(bias=True, out_features=64)").wait_for()
    assert _metric(page, "Parameters") == f"{14154 + 128 * 64 + 64 - 64 * 64:,}"
    # the graph is drawn only once its expander is opened (closed, nothing of it is drawn)
    graph = page.locator('[data-testid="stGraphVizChart"] svg').first
    assert page.locator('[data-testid="stGraphVizChart"]').count() == 0
    page.get_by_text("Graph and cost per layer").click()
    browser.wait_until_idle(page)
    graph.wait_for()
    assert "2. Linear(bias=True, out_features=64)" in graph.text_content()
    browser.screenshot(page, "network-journey-builder")

    # play the playground for a few seconds
    page.get_by_role("tab", name="See the function").click()
    browser.wait_until_idle(page)
    assert _metric(page, "Epoch") == "0.0"
    page.get_by_role("button", name="Play").click()
    page.wait_for_timeout(4000)
    page.get_by_role("button", name="Pause").click()
    browser.wait_until_idle(page)
    assert float(_metric(page, "Epoch")) > 0.5
    page.locator(".js-plotly-plot >> visible=true").first.wait_for()
    browser.screenshot(page, "network-journey-playground")
    assert browser.exception_texts(page) == []

    # the playground's settings survive a visit to another page (persist_state="session"):
    # XOR chosen, Home opened from the sidebar, then back to the builder and its tab
    _choose(page, "^Data$", "xor")
    page.locator('[data-testid="stSidebarNav"] a[href$="/"]').first.click()
    page.get_by_role("heading", name="Home").first.wait_for()
    browser.wait_until_idle(page)
    page.locator('[data-testid="stSidebarNav"] a[href$="/network"]').first.click()
    browser.wait_until_idle(page)
    page.get_by_role("tab", name="See the function").click()
    browser.wait_until_idle(page)
    data = page.get_by_role("combobox", name=re.compile("^Data$")).first
    assert data.input_value() == "xor", data.input_value()

    # Deep enough: XOR with 0..3 hidden layers, three seeds each, and the equal-parameter
    # family; the verdict quotes the linear model's accuracy
    page.get_by_role("tab", name="Deep enough").click()
    browser.wait_until_idle(page)
    page.get_by_role("button", name="Run the experiment").click()
    browser.wait_until_idle(page)
    verdict = page.get_by_text("With no hidden layer the test accuracy is").first
    verdict.wait_for()
    linear = int(re.search(r"accuracy is (\d+)%", verdict.inner_text()).group(1))
    assert linear < 75
    page.get_by_text("Decision boundaries, fixed width").wait_for()
    page.get_by_text("Decision boundaries, equal parameters").wait_for()
    browser.screenshot(page, "network-journey-deep-enough")

    # Layer by layer: the shipped digits model on a spoken seven, one heading per layer
    page.get_by_role("tab", name="Layer by layer").click()
    browser.wait_until_idle(page)
    page.get_by_text("f1(x) · Conv2d", exact=False).first.wait_for()
    page.get_by_text("Class probabilities").first.wait_for()
    assert _metric(page, "Answer") in [str(d) for d in range(10)]
    browser.screenshot(page, "network-journey-layer-by-layer")
    assert browser.exception_texts(page) == []
