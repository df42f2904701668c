"""FATE-Flow models in and out: ``model_local_cache`` layouts, archives, checkpoint steps, FATE 2.x
model storage, and FATE-Serving's view of a version.

Names follow FATE's model registry so FATE users recognise them (``names``). A pipeline version
is the whole version directory as FATE keeps it (``define/``, ``pipeline.pb``, ``variables/``,
``checkpoint/`` ...), so ``fate export`` writes it back file by file; each checkpoint step also
gets its own ref (sharing every object with the version).
"""

from .checkpoints import find_checkpoint, list_checkpoints
from .exporter import Exported, export
from .importer import ImportReport, import_archive, import_source
from .layout import check_checkpoint, checkpoint_steps, find_v2_outputs, find_versions
from .names import (
           ROLES,
           check_party_model_id,
           check_version,
           checkpoint_ref,
           component_ref,
           is_party_model_id,
           parse_archive_name,
           pipeline_ref,
)
from .serving import collect_models

__all__ = [
    "Exported",
    "ImportReport",
    "ROLES",
    "check_checkpoint",
    "check_party_model_id",
    "check_version",
    "checkpoint_ref",
    "checkpoint_steps",
    "collect_models",
    "component_ref",
    "export",
    "find_checkpoint",
    "find_v2_outputs",
    "find_versions",
    "import_archive",
    "import_source",
    "is_party_model_id",
    "list_checkpoints",
    "parse_archive_name",
    "pipeline_ref",
]
