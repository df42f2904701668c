"""casreg serving: FATE-Serving service ids bound to model versions, and publishing them to a
serving-server over gRPC as FATE-Flow does (``Registry.serving_*``, ``fate/publish.py``)."""

from __future__ import annotations

from typing import List, Optional

import typer

from .base import JSON_OPTION, _emit, _repo, _table, _when, app

serving_app = typer.Typer(help="FATE-Serving: bind service ids to model versions (serving/<service_id>), "
                               "publish them to a serving-server.", no_args_is_help=True)
app.add_typer(serving_app, name="serving")

SERVICE_ID = typer.Argument(..., help="FATE-Serving's serviceId, e.g. lr-credit.")
EXPECT_OLD = typer.Option(None, "--expect-old", metavar="V",
                          help="Only if the service id serves this version now (a version name of MODEL, "
                               "any version spec, or 'none': not bound).")


def _short(cid: bytes) -> str:
    return cid.hex()[:12]


@serving_app.command("bind")
def serving_bind(service_id: str = SERVICE_ID,
                 model: str = typer.Argument(..., help="A FATE party model id, e.g. guest#9999#guest-9999#host-10000#model."),
                 version: str = typer.Argument(..., help="Its model version."),
                 expect_old: Optional[str] = EXPECT_OLD) -> None:
    """Bind SERVICE_ID to a version (compare-and-swap; every move in `casreg reflog serving/SERVICE_ID`)."""
    with _repo() as repo:
        cid = repo.serving_bind(service_id, model, version, expect_old=expect_old)
    print(f"serving/{service_id} -> {model}/{version} ({_short(cid)})")


@serving_app.command("unbind")
def serving_unbind(service_id: str = SERVICE_ID, expect_old: Optional[str] = EXPECT_OLD) -> None:
    """Remove a service id's binding (compare-and-swap with --expect-old)."""
    with _repo() as repo:
        cid = repo.serving_unbind(service_id, expect_old=expect_old)
    print(f"unbound serving/{service_id} (was {_short(cid)})")


@serving_app.command("list")
def serving_list(as_json: bool = JSON_OPTION) -> None:
    """Service ids and the versions they serve."""
    with _repo(readonly=True) as repo:
        rows = repo.serving_list()
    _table(rows, as_json, [("SERVICE ID", lambda r: r["service_id"]), ("MODEL", lambda r: r["model"] or "?"),
                           ("VERSION", lambda r: r["version"] or "?"), ("ID", lambda r: r["id"][:12])])


@serving_app.command("history")
def serving_history(service_id: str = SERVICE_ID, as_json: bool = JSON_OPTION) -> None:
    """Every move of a service id's binding, newest first."""
    with _repo(readonly=True) as repo:
        rows = repo.serving_history(service_id)
    _table(rows, as_json, [("TIME", lambda r: _when(r["time"])), ("WHO", lambda r: r["who"]),
                           ("FROM", lambda r: r["old"] or "-"), ("TO", lambda r: r["new"] or "(unbound)")])


@serving_app.command("publish")
def serving_publish(service_id: str = SERVICE_ID,
                    serving: List[str] = typer.Option(..., "--serving", metavar="HOST:PORT",
                                                      help="A serving-server's gRPC address (repeatable)."),
                    transfer_url: Optional[str] = typer.Option(None, "--transfer-url", metavar="URL",
                                                               help="Where FATE-Serving fetches the model: a casreg serve "
                                                                    "(http://HOST:PORT, /v1/model/transfer added); default: "
                                                                    "the serving's own model.transfer.url."),
                    timeout: float = typer.Option(30.0, "--timeout", metavar="S", help="Seconds to wait for each reply."),
                    as_json: bool = JSON_OPTION) -> None:
    """Send publishLoad then publishBind of SERVICE_ID's version, as FATE-Flow's load and bind do."""
    try:
        import google.protobuf  # noqa: F401
        import grpc  # noqa: F401
    except ImportError as exc:
        from ..errors import CasregError
        raise CasregError(f"casreg serving publish needs {exc.name}: pip install 'casreg[serving]'") from None
    with _repo(readonly=True) as repo:
        report = repo.serving_publish(service_id, serving, transfer_url=transfer_url, timeout=timeout)
    if as_json:
        _emit(report.to_json())
        return
    for reply in report.replies:
        print(f"{reply['serving']}: {reply['call']} {report.model}/{report.version}: ok"
              f"{' (' + reply['message'] + ')' if reply['message'] else ''}")
