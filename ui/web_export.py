"""The Draw page's way out of the server: the picked model as a stand-alone web page (cnn_core/webpage.py), to
download, or to open from this server at /web/page?model=<the picker's label>[&layer=<name>].

A page is built once per checkpoint file version and layer and kept for every session (the last few, ~5 MB each);
nothing is built until someone asks: the download button builds it when pressed, the link when followed.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlencode

import streamlit as st
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from cnn_core.checkpoints import Checkpoint, CheckpointError, available_checkpoints, load_checkpoint
from cnn_core.webpage import NO_RUNTIME, NoRuntime, runtime_version, web_file_name, web_page

PAGE_ROUTE = "/web/page"
ABOUT = ("One HTML file with the model, the preprocessing and the feature maps: it runs in any browser with no "
         "server, predicting as the pen moves. Open it from a USB stick, or put it on any web host.")
NOT_HERE = "There is no such model here."


@lru_cache(maxsize=4)
def _page(path: str, mtime_ns: int, layer: str | None) -> bytes:
    return web_page(load_checkpoint(Path(path)), layer).encode()


def page_bytes(path: Path, layer: str | None) -> bytes:
    """The checkpoint at `path` as a web page showing `layer`'s maps (UTF-8 HTML), built once per file version."""
    path = Path(path).resolve()
    return _page(str(path), path.stat().st_mtime_ns, layer)


def page_url(label: str, layer: str | None) -> str:
    """Where this server serves the page of the picker's entry `label`."""
    return f"{PAGE_ROUTE}?{urlencode({'model': label, **({'layer': layer} if layer else {})})}"


def web_page_offer(ckpt: Checkpoint, label: str | None, layer: str | None) -> None:
    """The download button and the link for the picked model's page, or the sentence saying why there is none.
    `label` None: a model of this session's own, with no file here (built from `ckpt` when asked; no link)."""
    if runtime_version() is None:
        st.caption(f"🌐 {NO_RUNTIME}")
        return
    build = (lambda: page_bytes(ckpt.path, layer)) if label is not None else (lambda: web_page(ckpt, layer).encode())
    st.download_button("Download as a web page", data=build,
                       file_name=web_file_name(ckpt), mime="text/html", on_click="ignore", icon="🌐",
                       key="web_page_download")
    if label is not None:
        st.link_button("Open this model as a stand-alone page", page_url(label, layer), icon="↗️")
    st.caption(ABOUT)


def _find(label: str, cookie: str | None):
    """The picker's entry called `label` if this request's visitor may draw with it, else None."""
    from cnn_core.access import server_access
    from cnn_core.runs import runs_dir
    from ui.jobs import visitor_of
    from ui.model_picker import checkpoints_dir, may_use

    runs = runs_dir()
    entry = next((e for e in available_checkpoints(checkpoints_dir(), runs) if e.label == label), None)
    return entry if entry is not None and may_use(entry, server_access(runs), visitor_of(cookie)) else None


async def web_page_route(request: Request) -> Response:
    """GET /web/page?model=<label>[&layer=<name>]: the model the Draw page offers under that label as a stand-alone
    page, for a visitor who may draw with it there (hosted: pretrained models and their own runs); else 404."""
    from cnn_core.access import VISITOR_COOKIE

    label, layer = request.query_params.get("model", ""), request.query_params.get("layer") or None

    def build() -> bytes | None:
        entry = _find(label, request.cookies.get(VISITOR_COOKIE))
        return None if entry is None else page_bytes(entry.path, layer)

    try:
        page = await asyncio.to_thread(build)
    except NoRuntime as e:
        return PlainTextResponse(str(e), status_code=503)
    except (CheckpointError, OSError):  # unreadable, or gone since it was listed
        page = None
    except ValueError as e:  # a layer without feature maps
        return PlainTextResponse(str(e), status_code=400)
    if page is None:
        return PlainTextResponse(NOT_HERE, status_code=404)
    return Response(page, media_type="text/html; charset=utf-8")
