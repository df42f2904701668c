"""A version's models as FATE-Flow's ``/v1/model/transfer`` hands them to FATE-Serving."""

from __future__ import annotations

from ..errors import Corrupt
from .names import NAME, pipeline_ref


def _model_name(value, what: str) -> str:
    if not isinstance(value, str) or not NAME.match(value) or ":" in value:
        raise Corrupt(f"define/define_meta.yaml: {what} {value!r} is not a plain file name")
    return value


def collect_models(repo, party_model_id: str, version: str) -> dict[str, str]:
    """The models of a pipeline version as FATE-Flow's ``/v1/model/transfer`` gives them to
    FATE-Serving (``PipelinedModel.collect_models(in_bytes=True)``): for every component, model
    alias and model name of ``define/define_meta.yaml``'s ``model_proto``, in its order,
    ``"<component>.<alias>:<name>"`` -> base64 of ``variables/data/<component>/<alias>/<name>``."""
    import base64
    import io

    import yaml
    ref = pipeline_ref(party_model_id, version)

    def read(path: str) -> bytes:
        out = io.BytesIO()
        repo.cat(f"{ref}:{path}", out)
        return out.getvalue()

    try:
        define = yaml.safe_load(read("define/define_meta.yaml"))
    except yaml.YAMLError as exc:
        raise Corrupt(f"{ref}: define/define_meta.yaml does not parse: {exc}") from None
    proto = (define or {}).get("model_proto") or {} if isinstance(define, dict) else None
    if not isinstance(proto, dict) or not all(isinstance(a, dict) and all(isinstance(i, dict) for i in a.values())
                                              for a in proto.values()):
        raise Corrupt(f"{ref}: define/define_meta.yaml: model_proto is not component -> alias -> models")
    models = {}
    for component, aliases in proto.items():
        for alias, index in aliases.items():
            for name in index:
                path = "/".join(_model_name(v, w) for v, w in ((component, "component"), (alias, "alias"),
                                                               (name, "model")))
                models[f"{component}.{alias}:{name}"] = base64.b64encode(read(f"variables/data/{path}")).decode()
    return models
