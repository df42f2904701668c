"""FATE-Flow's own model stores, read and written in FATE's formats (and nothing of casreg's).

Where (``Location``): a FATE-Flow ``service_conf.yaml`` (1.x ``model_store_address`` with
``storage: mysql | redis | tencent_cos``; 2.x ``model_store: {engine, mysql | tencent_cos | file}``)
or a store URL: ``mysql://user@host:port/db``, ``redis://host:port/db?ex=SECONDS``,
``cos://<bucket>-<appid>.<region>/`` (or casreg's ``cos://<bucket>-<appid>?region=...``), ``file:///dir``
(2.x file engine). Secrets never come from URLs: a config's own values, else ``CASREG_FATE_PASSWORD``,
``CASREG_FATE_SECRET_ID``, ``CASREG_FATE_SECRET_KEY`` (COS also ``COS_SECRET_ID`` / ``COS_SECRET_KEY``).

What FATE-Flow writes (its storage classes, 1.7 to 2.2), each an ``Entry``:

- MySQL ``t_machine_learning_model``: one row per 8 MiB slice, ``f_slice_index`` 0..n-1. 1.7/1.8 and
  1.9+ key rows by (f_model_id = party model id, f_model_version) and hold
  ``base64(pickle.dumps(slice, protocol=4))`` in ``f_content``, ``f_size = sys.getsizeof(f_content)``;
  1.7/1.8 have ``f_description`` and no dates, 1.9+ ``f_create_date`` / ``f_update_date``. 1.9+ also
  ``t_machine_learning_component`` (per-component zips). 2.x: ``f_storage_key``, plain base64.
- Redis (1.7/1.8 only): ``FATEFlow:PipelinedModel:<party_model_id>:<model_version>``, the zip, TTL ``ex``.
- COS: ``FATEFlow/PipelinedModel/<pmid>/<version>.zip``, 1.9+ ``FATEFlow/PipelinedComponent/<pmid>/
  <version>/<component>.zip``, 2.x the storage key ``<model_id>/<version>/<role>/<party_id>/<task>/<output>``.
  A COS pipeline object does not say which 1.x wrote it: its layout is ``1.x`` unless a ``.zip.sha1``
  side object (1.7/1.8) or component objects (1.9+) tell.

Nothing read is trusted: slices must be 0..n-1, base64 strict, the pickle may hold no global at all
(every ``find_class`` is refused) and must be one ``bytes`` with nothing after it, the result a zip
(2.x: a tar) no larger than ``archive.Limits.max_bytes``; else ``Corrupt`` / ``HostileInput`` naming the
entry, never half an archive. Hashes FATE recorded (1.9+ ``f_archive_sha256`` of
``t_machine_learning_model_info`` / ``t_pipeline_component_meta`` when in the store's database; a
``.zip.sha1`` COS side object) come back beside the bytes (``Archive.check``).

Writes are FATE's own rows and objects; a version is replaced only with ``force``, and never visible
half written (one MySQL transaction, one Redis ``SET``, one COS ``PUT``, a rename for files).
"""

from __future__ import annotations

from .base import FateStore, open_conf, open_store, open_url
from .cos import COSStore
from .entries import (
    COMPONENT,
    COMPONENT_META_TABLE,
    COMPONENT_TABLE,
    COS_COMPONENTS,
    COS_MODELS,
    ENV,
    LAYOUT_1_8,
    LAYOUT_1_9,
    LAYOUT_1_X,
    LAYOUT_2,
    LAYOUTS,
    MODEL_INFO_TABLE,
    MODEL_TABLE,
    NAME_MAX,
    PICKLE_PROTOCOL,
    PIPELINE,
    REDIS_PREFIX,
    ROLES,
    SLICE_MAX_SIZE,
    Archive,
    Entry,
    check_archive,
    check_names,
    date_of,
    decode_slice,
    encode_slice,
    now_ms,
    parse_storage_key,
    size_limit,
    slice_size,
    too_big,
    v2_entry,
)
from .files import FileStore
from .mysql import MySQLStore
from .redis import RedisStore
from .where import Location, env_secrets, location_from_conf, parse_store_url, read_service_conf

__all__ = [
    "Archive",
    "COMPONENT",
    "COMPONENT_META_TABLE",
    "COMPONENT_TABLE",
    "COSStore",
    "COS_COMPONENTS",
    "COS_MODELS",
    "ENV",
    "Entry",
    "FateStore",
    "FileStore",
    "LAYOUTS",
    "LAYOUT_1_8",
    "LAYOUT_1_9",
    "LAYOUT_1_X",
    "LAYOUT_2",
    "Location",
    "MODEL_INFO_TABLE",
    "MODEL_TABLE",
    "MySQLStore",
    "NAME_MAX",
    "PICKLE_PROTOCOL",
    "PIPELINE",
    "REDIS_PREFIX",
    "ROLES",
    "RedisStore",
    "SLICE_MAX_SIZE",
    "check_archive",
    "check_names",
    "date_of",
    "decode_slice",
    "encode_slice",
    "env_secrets",
    "location_from_conf",
    "now_ms",
    "open_conf",
    "open_store",
    "open_url",
    "parse_storage_key",
    "parse_store_url",
    "read_service_conf",
    "size_limit",
    "slice_size",
    "too_big",
    "v2_entry",
]
