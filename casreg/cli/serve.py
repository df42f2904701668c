"""casreg serve: the HTTP server over a store."""

from __future__ import annotations

import sys
from typing import Optional

import typer

from .base import _repo, app


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Address to bind (another than loopback needs a token)."),
          port: int = typer.Option(8080, "--port", min=0, max=65535),
          read_only: bool = typer.Option(False, "--read-only", help="Refuse every write (403)."),
          token_file: Optional[str] = typer.Option(None, "--token-file", metavar="FILE",
                                                   help="Writes need Authorization: Bearer <the file's token>."),
          max_body: int = typer.Option(1 << 20, "--max-body", metavar="BYTES", min=1,
                                       help="Largest request body taken.")) -> None:
    """Serve the store over HTTP: Kubeflow Model Registry's REST API, FATE-Serving's model transfer."""
    try:
        import uvicorn

        from ..server import check_bind, create_app, read_token
    except ImportError as exc:
        from ..errors import CasregError
        raise CasregError(f"casreg serve needs {exc.name}: pip install 'casreg[serve]'") from None
    token = read_token(token_file) if token_file else None
    check_bind(host, token)
    with _repo(readonly=read_only) as repo:
        application = create_app(repo, read_only=read_only, token=token, max_body=max_body)
        print(f"casreg: serving {repo.path} on http://{host}:{port} ({'read-only' if read_only else 'read-write'}"
              f"{', writes need the token' if token else ''})", file=sys.stderr, flush=True)
        uvicorn.run(application, host=host, port=port, log_level="warning", server_header=False)
