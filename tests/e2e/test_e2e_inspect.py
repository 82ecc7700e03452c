"""Inspect: the confusion matrix renders, and choosing a cell (selectboxes, then a click) shows its images."""

from playwright.sync_api import expect
from streamlit_ui import choose, needs_page, open_page, screenshot, wait_idle

pytestmark = needs_page("inspect.py")
MATRIX = ".st-key-confusion .js-plotly-plot"
CELL_IMAGES = ".st-key-cell .js-plotly-plot"


def matrix(page) -> tuple[list[list[int]], list[str]]:
    """The confusion matrix as drawn (rows true classes, columns predicted ones) and the class names."""
    return page.evaluate("""(sel) => {
      const heatmap = document.querySelector(sel)._fullData.find(t => t.type === 'heatmap');  // z decoded from base64
      return [Array.from(heatmap.z, row => Array.from(row)), Array.from(heatmap.x, String)];
    }""", MATRIX)


def images_shown(page) -> int:
    """How many images the chosen cell's strip shows (one plotly trace each)."""
    return page.evaluate("(sel) => document.querySelector(sel)?.data.length || 0", CELL_IMAGES)


def mistake_cells(cm: list[list[int]]) -> list[tuple[int, int]]:
    """Off-diagonal cells that hold mistakes, most first."""
    cells = [(t, p) for t, row in enumerate(cm) for p, n in enumerate(row) if t != p and n]
    return sorted(cells, key=lambda c: -cm[c[0]][c[1]])


def test_confusion_matrix_and_a_cell_s_mistakes(app, page, console_errors):
    open_page(page, f"{app.url}/inspect")
    page.get_by_role("tab", name="Confusion matrix and mistakes").click()
    page.locator(MATRIX).wait_for()
    cm, classes = matrix(page)  # the picker's default model: MNIST digits or Fashion-MNIST names
    assert len(cm) == len(classes) == 10 and sum(map(sum, cm)) == 500, "one row per class, every test image counted"
    cells = mistake_cells(cm)
    assert len(cells) >= 3, "a pretrained model misreads the synthetic bars in many ways"

    # The selectboxes: the cell with the second most mistakes (the first is shown by default).
    t, p = cells[1]
    choose(page, "True class", classes[t])
    choose(page, "Predicted class", classes[p])
    page.get_by_text(f"{cm[t][p]} images of {classes[t]} predicted as {classes[p]}").wait_for()
    wait_idle(page)
    assert images_shown(page) == min(cm[t][p], 24)

    # A click on another cell's marker sets both selectboxes.
    t, p = cells[2]
    x, y = page.evaluate("""([sel, t, p]) => {  // the cell's centre on the screen, from plotly's axes
      const gd = document.querySelector(sel); gd.scrollIntoView();
      const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
      return [box.left + xa._offset + xa.l2p(xa.d2l(p)), box.top + ya._offset + ya.l2p(ya.d2l(t))];
    }""", [MATRIX, classes[t], classes[p]])
    page.mouse.click(x, y)
    expect(page.get_by_role("combobox", name="True class")).to_have_value(classes[t])
    expect(page.get_by_role("combobox", name="Predicted class")).to_have_value(classes[p])
    page.get_by_text(f"{cm[t][p]} images of {classes[t]} predicted as {classes[p]}").wait_for()
    wait_idle(page)
    assert images_shown(page) == min(cm[t][p], 24)
    screenshot(page, "inspect")
    assert page.get_by_test_id("stException").count() == 0
    assert not console_errors, console_errors
