# Generated from model_service.proto by regenerate.py (grpcio-tools 1.70.0): do not edit.
# ruff: noqa
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Party(_message.Message):
    __slots__ = ("partyId",)
    PARTYID_FIELD_NUMBER: _ClassVar[int]
    partyId: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, partyId: _Optional[_Iterable[str]] = ...) -> None: ...

class LocalInfo(_message.Message):
    __slots__ = ("role", "partyId")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PARTYID_FIELD_NUMBER: _ClassVar[int]
    role: str
    partyId: str
    def __init__(self, role: _Optional[str] = ..., partyId: _Optional[str] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("tableName", "namespace")
    TABLENAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    tableName: str
    namespace: str
    def __init__(self, tableName: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class RoleModelInfo(_message.Message):
    __slots__ = ("roleModelInfo",)
    class RoleModelInfoEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ModelInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...
    ROLEMODELINFO_FIELD_NUMBER: _ClassVar[int]
    roleModelInfo: _containers.MessageMap[str, ModelInfo]
    def __init__(self, roleModelInfo: _Optional[_Mapping[str, ModelInfo]] = ...) -> None: ...

class UnloadRequest(_message.Message):
    __slots__ = ("tableName", "namespace")
    TABLENAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    tableName: str
    namespace: str
    def __init__(self, tableName: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class UnloadResponse(_message.Message):
    __slots__ = ("statusCode", "message")
    STATUSCODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    statusCode: int
    message: str
    def __init__(self, statusCode: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class UnbindRequest(_message.Message):
    __slots__ = ("serviceIds", "tableName", "namespace")
    SERVICEIDS_FIELD_NUMBER: _ClassVar[int]
    TABLENAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    serviceIds: _containers.RepeatedScalarFieldContainer[str]
    tableName: str
    namespace: str
    def __init__(self, serviceIds: _Optional[_Iterable[str]] = ..., tableName: _Optional[str] = ..., namespace: _Optional[str] = ...) -> None: ...

class UnbindResponse(_message.Message):
    __slots__ = ("statusCode", "message")
    STATUSCODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    statusCode: int
    message: str
    def __init__(self, statusCode: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class QueryModelRequest(_message.Message):
    __slots__ = ("serviceId", "tableName", "namespace", "beginIndex", "endIndex", "queryType")
    SERVICEID_FIELD_NUMBER: _ClassVar[int]
    TABLENAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    BEGININDEX_FIELD_NUMBER: _ClassVar[int]
    ENDINDEX_FIELD_NUMBER: _ClassVar[int]
    QUERYTYPE_FIELD_NUMBER: _ClassVar[int]
    serviceId: str
    tableName: str
    namespace: str
    beginIndex: int
    endIndex: int
    queryType: int
    def __init__(self, serviceId: _Optional[str] = ..., tableName: _Optional[str] = ..., namespace: _Optional[str] = ..., beginIndex: _Optional[int] = ..., endIndex: _Optional[int] = ..., queryType: _Optional[int] = ...) -> None: ...

class ModelBindInfo(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PipelineNode(_message.Message):
    __slots__ = ("name", "params")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    params: str
    def __init__(self, name: _Optional[str] = ..., params: _Optional[str] = ...) -> None: ...

class ModelProcessorExt(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[PipelineNode]
    def __init__(self, nodes: _Optional[_Iterable[_Union[PipelineNode, _Mapping]]] = ...) -> None: ...

class ModelInfoEx(_message.Message):
    __slots__ = ("tableName", "namespace", "serviceIds", "content", "index", "modelProcessorExt", "resourceAdress")
    TABLENAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    SERVICEIDS_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MODELPROCESSOREXT_FIELD_NUMBER: _ClassVar[int]
    RESOURCEADRESS_FIELD_NUMBER: _ClassVar[int]
    tableName: str
    namespace: str
    serviceIds: _containers.RepeatedScalarFieldContainer[str]
    content: str
    index: int
    modelProcessorExt: ModelProcessorExt
    resourceAdress: str
    def __init__(self, tableName: _Optional[str] = ..., namespace: _Optional[str] = ..., serviceIds: _Optional[_Iterable[str]] = ..., content: _Optional[str] = ..., index: _Optional[int] = ..., modelProcessorExt: _Optional[_Union[ModelProcessorExt, _Mapping]] = ..., resourceAdress: _Optional[str] = ...) -> None: ...

class QueryModelResponse(_message.Message):
    __slots__ = ("retcode", "message", "modelInfos")
    RETCODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODELINFOS_FIELD_NUMBER: _ClassVar[int]
    retcode: int
    message: str
    modelInfos: _containers.RepeatedCompositeFieldContainer[ModelInfoEx]
    def __init__(self, retcode: _Optional[int] = ..., message: _Optional[str] = ..., modelInfos: _Optional[_Iterable[_Union[ModelInfoEx, _Mapping]]] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("local", "role", "model", "serviceId", "tableName", "namespace", "loadType", "filePath")
    class RoleEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Party
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Party, _Mapping]] = ...) -> None: ...
    class ModelEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: RoleModelInfo
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[RoleModelInfo, _Mapping]] = ...) -> None: ...
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERVICEID_FIELD_NUMBER: _ClassVar[int]
    TABLENAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    LOADTYPE_FIELD_NUMBER: _ClassVar[int]
    FILEPATH_FIELD_NUMBER: _ClassVar[int]
    local: LocalInfo
    role: _containers.MessageMap[str, Party]
    model: _containers.MessageMap[str, RoleModelInfo]
    serviceId: str
    tableName: str
    namespace: str
    loadType: str
    filePath: str
    def __init__(self, local: _Optional[_Union[LocalInfo, _Mapping]] = ..., role: _Optional[_Mapping[str, Party]] = ..., model: _Optional[_Mapping[str, RoleModelInfo]] = ..., serviceId: _Optional[str] = ..., tableName: _Optional[str] = ..., namespace: _Optional[str] = ..., loadType: _Optional[str] = ..., filePath: _Optional[str] = ...) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("statusCode", "message", "error", "data")
    STATUSCODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    statusCode: int
    message: str
    error: str
    data: bytes
    def __init__(self, statusCode: _Optional[int] = ..., message: _Optional[str] = ..., error: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class FetchModelRequest(_message.Message):
    __slots__ = ("tableName", "namespace", "sourceIp", "sourcePort", "targetIp", "targetPort", "serviceIds")
    TABLENAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    SOURCEIP_FIELD_NUMBER: _ClassVar[int]
    SOURCEPORT_FIELD_NUMBER: _ClassVar[int]
    TARGETIP_FIELD_NUMBER: _ClassVar[int]
    TARGETPORT_FIELD_NUMBER: _ClassVar[int]
    SERVICEIDS_FIELD_NUMBER: _ClassVar[int]
    tableName: str
    namespace: str
    sourceIp: str
    sourcePort: int
    targetIp: str
    targetPort: int
    serviceIds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tableName: _Optional[str] = ..., namespace: _Optional[str] = ..., sourceIp: _Optional[str] = ..., sourcePort: _Optional[int] = ..., targetIp: _Optional[str] = ..., targetPort: _Optional[int] = ..., serviceIds: _Optional[_Iterable[str]] = ...) -> None: ...

class FetchModelResponse(_message.Message):
    __slots__ = ("statusCode", "message")
    STATUSCODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    statusCode: int
    message: str
    def __init__(self, statusCode: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class ModelTransferRequest(_message.Message):
    __slots__ = ("tableName", "namespace", "serviceIds")
    TABLENAME_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    SERVICEIDS_FIELD_NUMBER: _ClassVar[int]
    tableName: str
    namespace: str
    serviceIds: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tableName: _Optional[str] = ..., namespace: _Optional[str] = ..., serviceIds: _Optional[_Iterable[str]] = ...) -> None: ...

class ModelTransferResponse(_message.Message):
    __slots__ = ("statusCode", "message", "modelData", "cacheData")
    STATUSCODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODELDATA_FIELD_NUMBER: _ClassVar[int]
    CACHEDATA_FIELD_NUMBER: _ClassVar[int]
    statusCode: int
    message: str
    modelData: bytes
    cacheData: bytes
    def __init__(self, statusCode: _Optional[int] = ..., message: _Optional[str] = ..., modelData: _Optional[bytes] = ..., cacheData: _Optional[bytes] = ...) -> None: ...
