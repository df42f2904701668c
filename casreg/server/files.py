"""A version's files over HTTP (what a Kubeflow artifact's ``casreg_download_url`` names):
``GET /api/casreg/v1/versions/{id}/files`` lists them, ``.../files/{path}`` gives one. Ids are the
catalog's (``catalog.ids``), so no model name (``#``, ``/``) has to travel in a URL.
"""

from __future__ import annotations

import tempfile

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse

from .. import catalog
from ..errors import NotFound
from .app import Store, store

PREFIX = "/api/casreg/v1"


def _ref(repo, vid: str) -> str:
    key = {str(n): k for k, n in catalog.ids(repo).items()}.get(vid, "")
    if not key.startswith(catalog.MODELS) or not dict(repo.list_refs(key)).get(key):
        raise NotFound(f"no model version with id {vid}")
    return key


def install(app: FastAPI) -> None:
    @app.get(f"{PREFIX}/versions/{{vid}}/files", tags=["casreg"], summary="A version's files")
    def list_files(request: Request, vid: str, s: Store = Depends(store)) -> dict:
        def run(repo) -> dict:
            ref = _ref(repo, vid)
            base = f"{request.base_url}{PREFIX[1:]}/versions/{vid}/files/"
            files = [dict(row, url=base + row["path"]) for row in repo.ls(ref) if row["kind"] == "file"]
            return {"version": ref, "files": files}
        return s.run(run)

    @app.get(f"{PREFIX}/versions/{{vid}}/files/{{path:path}}", tags=["casreg"], summary="One file of a version")
    def get_file(vid: str, path: str, s: Store = Depends(store)) -> StreamingResponse:
        spool = tempfile.SpooledTemporaryFile(max_size=8 << 20)

        def run(repo) -> None:
            repo.cat(f"{_ref(repo, vid)}:{path}", spool)
        try:
            s.run(run)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)

        def stream():
            with spool:
                while block := spool.read(1 << 20):
                    yield block
        return StreamingResponse(stream(), media_type="application/octet-stream")
