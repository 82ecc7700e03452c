"""The screen a session is seen on: its width, asked of the browser once per session, phone layouts and the phone
stylesheet, and a way to bring a part of the page into view.

A tiny component reads `window.innerWidth` when it mounts and reports it: one rerun per session, then the width
is kept in st.session_state for every page and the probe is not drawn again. Until it has answered (and in
AppTest, and for clients that run no JavaScript) the width is unknown and pages lay out for a desktop.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
import streamlit as st

PHONE_MAX = 640  # Streamlit stacks columns at this width and below: we lay such a screen out as a phone
MARGIN = 16  # the main block's padding on each side of a narrow screen (1rem)
WIDTH = "viewport_width"  # st.session_state key: the browser window's width in CSS pixels
PROBE = "viewport_probe"  # the probe's key (its reported state)

# Calls `then()` once the page has settled: its script run ended, every element drawn (no skeleton left while an
# element's code loads) and nothing changed for 300 ms. Returns the cleanup function a component returns.
WHEN_SETTLED = """
function whenSettled(then) {
  const app = document.querySelector("[data-testid=stApp]");
  const settled = () => !(app && app.dataset.testScriptState && app.dataset.testScriptState !== "notRunning")
    && !document.querySelector("[data-testid=stSkeleton]");
  let timer = null;
  const watch = new MutationObserver(() => wait());
  const wait = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      if (!settled()) return;
      watch.disconnect();
      then();
    }, 300);
  };
  watch.observe(document.body, {subtree: true, childList: true, attributes: true,
                                attributeFilter: ["data-test-script-state"]});
  wait();
  return () => { watch.disconnect(); clearTimeout(timer); };
}
"""

# A report sent at once, while the first run still streamed its elements, left the Train form's widgets at their
# defaults instead of the values the script had set through st.session_state (learning rate 0, Train disabled).
_probe = st.components.v2.component("cnn_viewport", js=WHEN_SETTLED + """
export default function ({parentElement, setStateValue}) {
  if (parentElement.dataset.reported) return;
  parentElement.dataset.reported = "1";
  const width = Math.round(window.innerWidth);
  return whenSettled(() => {
    document.documentElement.dataset.viewportWidth = width;  // the page's own record of what was reported
    setStateValue("width", width);
  });
}
""", isolate_styles=False)

# Scrolls once the page has settled: before, the last run's elements (a phone's long form) still stood below, and
# when they went the browser clamped the scroll to the new, shorter page's bottom.
_reveal = st.components.v2.component("cnn_reveal", js=WHEN_SETTLED + """
export default function ({parentElement}) {
  if (parentElement.dataset.revealed) return;
  parentElement.dataset.revealed = "1";
  parentElement.style.scrollMarginTop = "4rem";  // below Streamlit's header bar
  return whenSettled(() => parentElement.scrollIntoView({block: "start"}));
}
""", isolate_styles=False)

# Phones: less empty space above the title, a smaller title, and buttons and links a thumb can hit (44 px).
PHONE_CSS = f"""<style>
@media (max-width: {PHONE_MAX}px) {{
  [data-testid="stMainBlockContainer"] {{ padding-top: 4rem; }}
  [data-testid="stMainBlockContainer"] h1 {{ font-size: 2rem; padding-top: 0; }}
  .stButton button, .stDownloadButton button, .stFormSubmitButton button, .stLinkButton a {{ min-height: 2.75rem; }}
  [data-testid="stPageLink"] a {{ min-height: 2.75rem; align-items: center; }}
  [data-testid="stExpander"] summary {{ min-height: 2.75rem; }}
}}
</style>"""


def _remember() -> None:
    """Keep the width the probe reported (a callback: it runs before the rerun the report causes, so that the
    rerun, the session's only extra one, no longer draws the probe)."""
    width = (st.session_state.get(PROBE) or {}).get("width")
    if width:
        st.session_state[WIDTH] = int(width)


def probe() -> None:
    """Call once per script run (the app shell): until this session's browser has said how wide it is, mount
    the probe. Also adds the phone stylesheet."""
    st.html(PHONE_CSS)
    if st.session_state.get(WIDTH) is None:
        _probe(key=PROBE, on_width_change=_remember)


def viewport_width() -> int | None:
    """The browser window's width in CSS pixels; None until it has been reported."""
    return st.session_state.get(WIDTH)


def is_phone() -> bool:
    """A narrow screen (a phone held upright): pages put each result right under its input."""
    width = viewport_width()
    return width is not None and width <= PHONE_MAX


def canvas_side(desktop: int = 280) -> int:
    """The drawing canvas's side in CSS pixels: the whole width of a phone's page, else `desktop`."""
    width = viewport_width()
    return width - 2 * MARGIN if is_phone() else desktop


def reveal(key: str) -> None:
    """Scroll the page so that what follows this call starts at the top of the screen (once per `key`)."""
    _reveal(key=key)


def plotly_chart(fig: go.Figure, **kwargs: Any) -> Any:
    """`st.plotly_chart` in the current container. On a phone, a finger on the chart scrolls the page (plotly's
    drag-to-zoom would take the swipe) and no mode bar covers the chart's title; a tap still hovers and selects."""
    if is_phone():
        fig.update_layout(dragmode=False)
        kwargs.setdefault("config", {"displayModeBar": False})
    return st.plotly_chart(fig, **kwargs)
