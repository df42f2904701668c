"""A version's files over HTTP (what a Kubeflow artifact's ``casreg_download_url`` names):
``GET /api/casreg/v1/versions/{id}/files`` lists them, ``.../files/{path}`` gives one. Ids are the
catalog's (``catalog.ids``), so no model name (``#``, ``/``) has to travel in a URL.

A download is streamed piece by piece from the store (``Registry.read_range``): nothing is
spooled, the request lock is held per piece (~4 MiB), not for the whole file. ``Range: bytes=``
with one range answers 206 with only the chunks that range overlaps read; an unsatisfiable one
416 with ``Content-Range: bytes */<size>``; several ranges, or an ``If-Range`` that is not the
current ETag, the whole file (RFC 9110 lets a server ignore Range). The ETag is the file's
content id (its manifest id: same id, same bytes), so ``If-None-Match`` answers 304.
"""

from __future__ import annotations

import re

from fastapi import Depends, FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from .app import Store, store
from .errors import ERRORS, RangeNotSatisfiable

PREFIX = "/api/casreg/v1"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class FileRow(BaseModel):
    path: str
    kind: str
    mode: int
    size: int
    url: str


class FileList(BaseModel):
    version: str
    files: list[FileRow]


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, stop)`` of a one-range ``Range`` header; None to send the whole file;
    RangeNotSatisfiable when no byte of the range exists."""
    if not header:
        return None
    match = _RANGE.match(header.replace(" ", ""))
    if match is None:  # several ranges or another unit: ignored, the whole file goes
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        if int(last) == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - int(last)), size
    start = int(first)
    stop = size if not last else min(size, int(last) + 1)
    if last and int(last) < start:
        return None  # syntactically invalid: ignored
    if start >= size:
        raise RangeNotSatisfiable(size)
    return start, stop


def install(app: FastAPI) -> None:
    @app.get(f"{PREFIX}/versions/{{vid}}/files", tags=["casreg"], summary="A version's files",
             responses=ERRORS)
    def list_files(request: Request, vid: str, s: Store = Depends(store)) -> FileList:
        def run(repo) -> FileList:
            ref = repo.version_of_id(vid)
            base = f"{request.base_url}{PREFIX[1:]}/versions/{vid}/files/"
            files = [FileRow(**row, url=base + row["path"]) for row in repo.ls(ref) if row["kind"] == "file"]
            return FileList(version=ref, files=files)
        return s.run(run)

    @app.api_route(f"{PREFIX}/versions/{{vid}}/files/{{path:path}}", methods=["GET", "HEAD"], tags=["casreg"],
                   summary="One file of a version", response_class=StreamingResponse, responses={
                       **ERRORS, 206: {"description": "the range asked for"}, 304: {"description": "not modified"},
                       416: {"description": "no byte of the range exists"}})
    def get_file(request: Request, vid: str, path: str, s: Store = Depends(store)) -> Response:
        info = s.run(lambda repo: repo.file_info(repo.version_of_id(vid), path))
        etag = f'"{info.content_id.hex()}"'
        headers = {"Accept-Ranges": "bytes", "ETag": etag}
        if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
            return Response(status_code=304, headers=headers)
        wanted = request.headers.get("range")
        if_range = request.headers.get("if-range")
        span = byte_range(wanted, info.size) if if_range in (None, etag) else None
        start, stop = span or (0, info.size)
        headers["Content-Length"] = str(stop - start)
        status = 200
        if span is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{stop - 1}/{info.size}"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers)
        pieces = s.registry.read_range(info.content_id, start, stop, guard=lambda: s.lock)
        return StreamingResponse(pieces, status_code=status, headers=headers, media_type="application/octet-stream")
