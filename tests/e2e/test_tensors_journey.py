"""A student's journey on the Tensor playground, in a real browser.

Build two tensors A and B by shape, step their matrix product cell by cell to the end, then
run the memory experiment `Y += X` and see both names point at the same storage, then `Y = X`
and see that the later in-place change to X reaches Y (assignment copies nothing).
"""

from __future__ import annotations

from tests.e2e import browser


def _open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    browser.wait_until_idle(page)


def _type_into(page, label: str, text: str) -> None:
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Enter")
    browser.wait_until_idle(page)


def test_tensors_journey(page, app_url):
    browser.open_registered_page(page, app_url, "tensors")

    _open_tab(page, "2 · Matrix multiplication")
    _type_into(page, "Shape of A", "2, 3")
    _type_into(page, "Shape of B", "3, 2")
    page.locator(".annotation-text", has_text="C = A @ B (2, 2)").wait_for()
    next_cell = page.get_by_role("button", name="Next cell")
    for _ in range(4):
        next_cell.click()
        browser.wait_until_idle(page)
    page.get_by_text("All 4 cells done").wait_for()
    page.get_by_text("Equal to torch.matmul(A, B): True").wait_for()
    page.get_by_text("C[1, 1]").first.wait_for()
    browser.screenshot(page, "tensors-journey-matmul")

    _open_tab(page, "4 · Memory")
    page.get_by_role("radiogroup", name="Statement").get_by_text("Y += X", exact=True).click()
    browser.wait_until_idle(page)
    page.get_by_role("button", name="Run the experiment").click()
    browser.wait_until_idle(page)
    page.get_by_text(
        "Memory was written in place, and every name for it sees that: Y, Y_old"
    ).wait_for()
    page.locator(".gtitle", has_text="after").first.wait_for()  # the storage figure

    page.get_by_role("radiogroup", name="Statement").get_by_text("Y = X", exact=True).click()
    browser.wait_until_idle(page)
    page.get_by_role("button", name="Run the experiment").click()
    browser.wait_until_idle(page)
    page.get_by_text("Y is another name for the tensor X names: nothing copied").wait_for()
    page.get_by_text("Y too, because Y shares X's memory").wait_for()
    browser.screenshot(page, "tensors-journey-memory")
    assert browser.exception_texts(page) == []
