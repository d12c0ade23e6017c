import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DigestRunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIGEST_RUN_STATUS_UNSPECIFIED: _ClassVar[DigestRunStatus]
    DIGEST_RUN_STATUS_QUEUED: _ClassVar[DigestRunStatus]
    DIGEST_RUN_STATUS_RUNNING: _ClassVar[DigestRunStatus]
    DIGEST_RUN_STATUS_SUCCEEDED: _ClassVar[DigestRunStatus]
    DIGEST_RUN_STATUS_FAILED: _ClassVar[DigestRunStatus]
DIGEST_RUN_STATUS_UNSPECIFIED: DigestRunStatus
DIGEST_RUN_STATUS_QUEUED: DigestRunStatus
DIGEST_RUN_STATUS_RUNNING: DigestRunStatus
DIGEST_RUN_STATUS_SUCCEEDED: DigestRunStatus
DIGEST_RUN_STATUS_FAILED: DigestRunStatus

class DigestRunTimings(_message.Message):
    __slots__ = ("query_seconds", "render_seconds", "send_seconds", "record_seconds")
    QUERY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RENDER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEND_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RECORD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    query_seconds: float
    render_seconds: float
    send_seconds: float
    record_seconds: float
    def __init__(self, query_seconds: _Optional[float] = ..., render_seconds: _Optional[float] = ..., send_seconds: _Optional[float] = ..., record_seconds: _Optional[float] = ...) -> None: ...

class DigestRun(_message.Message):
    __slots__ = ("id", "status", "trigger", "as_of", "created_at", "started_at", "finished_at", "due", "processed", "sent", "failed", "skipped", "skipped_by_reason", "failed_by_reason", "items", "duration_seconds", "timings", "holder", "attempts", "error")
    class SkippedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class FailedByReasonEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_AT_FIELD_NUMBER: _ClassVar[int]
    DUE_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    FAILED_BY_REASON_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    id: str
    status: DigestRunStatus
    trigger: str
    as_of: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    finished_at: _timestamp_pb2.Timestamp
    due: int
    processed: int
    sent: int
    failed: int
    skipped: int
    skipped_by_reason: _containers.ScalarMap[str, int]
    failed_by_reason: _containers.ScalarMap[str, int]
    items: int
    duration_seconds: float
    timings: DigestRunTimings
    holder: str
    attempts: int
    error: str
    def __init__(self, id: _Optional[str] = ..., status: _Optional[_Union[DigestRunStatus, str]] = ..., trigger: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finished_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., due: _Optional[int] = ..., processed: _Optional[int] = ..., sent: _Optional[int] = ..., failed: _Optional[int] = ..., skipped: _Optional[int] = ..., skipped_by_reason: _Optional[_Mapping[str, int]] = ..., failed_by_reason: _Optional[_Mapping[str, int]] = ..., items: _Optional[int] = ..., duration_seconds: _Optional[float] = ..., timings: _Optional[_Union[DigestRunTimings, _Mapping]] = ..., holder: _Optional[str] = ..., attempts: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class RunDigestRequest(_message.Message):
    __slots__ = ("as_of",)
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    as_of: _timestamp_pb2.Timestamp
    def __init__(self, as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RunDigestResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: DigestRun
    def __init__(self, run: _Optional[_Union[DigestRun, _Mapping]] = ...) -> None: ...

class GetDigestRunRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class GetDigestRunResponse(_message.Message):
    __slots__ = ("run",)
    RUN_FIELD_NUMBER: _ClassVar[int]
    run: DigestRun
    def __init__(self, run: _Optional[_Union[DigestRun, _Mapping]] = ...) -> None: ...

class ListDigestRunsRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListDigestRunsResponse(_message.Message):
    __slots__ = ("runs",)
    RUNS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[DigestRun]
    def __init__(self, runs: _Optional[_Iterable[_Union[DigestRun, _Mapping]]] = ...) -> None: ...
