"""The web catalog at ``/``: static HTML, JavaScript and CSS shipped in ``static/`` (no CDN, no
build step), reading casreg's REST API (``rest.py``) from the same server."""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def install(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(os.path.join(STATIC, "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
