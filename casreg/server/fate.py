"""FATE-Serving's side of FATE-Flow: ``POST /v1/model/transfer``.

FATE-Serving's serving-server loads a model by POSTing ``{"name": <model_version>, "namespace":
<party_model_id>}`` to the transfer URL FATE-Flow gave it (or ``model.transfer.url``); the answer
is ``{"retcode": 0, "retmsg": "success", "data": {"<component>.<alias>:<ModelName>": base64}}``,
built by ``fate.collect_models`` from a pipeline version imported with ``casreg fate import``.
It only reads, so it needs no token (FATE-Serving sends none).
"""

from __future__ import annotations

from fastapi import Depends, FastAPI
from pydantic import BaseModel

from .. import fate
from ..errors import InvalidInput
from .app import Store, store


class TransferRequest(BaseModel):
    name: str = ""       # model_version
    namespace: str = ""  # party_model_id


def install(app: FastAPI) -> None:
    @app.post("/v1/model/transfer", tags=["FATE-Serving"], summary="A pipeline version's models for FATE-Serving")
    def transfer(body: TransferRequest, s: Store = Depends(store)) -> dict:
        if not body.name or not body.namespace:
            raise InvalidInput("namespace (the party model id) and name (the model version) are required")
        data = s.run(lambda repo: fate.collect_models(repo, body.namespace, body.name))
        return {"retcode": 0, "retmsg": "success", "data": data}
