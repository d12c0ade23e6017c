import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListDeadLettersRequest(_message.Message):
    __slots__ = ("channel", "limit")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    channel: str
    limit: int
    def __init__(self, channel: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("id", "notification_id", "user_id", "type", "channel", "provider", "error", "attempts", "dead_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEAD_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    notification_id: str
    user_id: str
    type: str
    channel: str
    provider: str
    error: str
    attempts: int
    dead_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., notification_id: _Optional[str] = ..., user_id: _Optional[str] = ..., type: _Optional[str] = ..., channel: _Optional[str] = ..., provider: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., dead_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ("dead_letters",)
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    def __init__(self, dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ...) -> None: ...

class RequeueDeadLettersRequest(_message.Message):
    __slots__ = ("ids", "all", "channel")
    IDS_FIELD_NUMBER: _ClassVar[int]
    ALL_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    ids: _containers.RepeatedScalarFieldContainer[str]
    all: bool
    channel: str
    def __init__(self, ids: _Optional[_Iterable[str]] = ..., all: _Optional[bool] = ..., channel: _Optional[str] = ...) -> None: ...

class RequeueDeadLettersResponse(_message.Message):
    __slots__ = ("requeued",)
    REQUEUED_FIELD_NUMBER: _ClassVar[int]
    requeued: int
    def __init__(self, requeued: _Optional[int] = ...) -> None: ...

class GetProviderStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ProviderStatus(_message.Message):
    __slots__ = ("provider", "state", "consecutive_failures", "opened")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    provider: str
    state: str
    consecutive_failures: int
    opened: int
    def __init__(self, provider: _Optional[str] = ..., state: _Optional[str] = ..., consecutive_failures: _Optional[int] = ..., opened: _Optional[int] = ...) -> None: ...

class GetProviderStatusResponse(_message.Message):
    __slots__ = ("providers",)
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[ProviderStatus]
    def __init__(self, providers: _Optional[_Iterable[_Union[ProviderStatus, _Mapping]]] = ...) -> None: ...

class GetDeliveryStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChannelStats(_message.Message):
    __slots__ = ("channel", "by_status")
    class ByStatusEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    BY_STATUS_FIELD_NUMBER: _ClassVar[int]
    channel: str
    by_status: _containers.ScalarMap[str, int]
    def __init__(self, channel: _Optional[str] = ..., by_status: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetDeliveryStatsResponse(_message.Message):
    __slots__ = ("channels", "sent", "retried", "failed", "errors", "opens", "clicks", "opened", "clicked")
    class ErrorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    OPENS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_FIELD_NUMBER: _ClassVar[int]
    OPENED_FIELD_NUMBER: _ClassVar[int]
    CLICKED_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[ChannelStats]
    sent: int
    retried: int
    failed: int
    errors: _containers.ScalarMap[str, int]
    opens: int
    clicks: int
    opened: int
    clicked: int
    def __init__(self, channels: _Optional[_Iterable[_Union[ChannelStats, _Mapping]]] = ..., sent: _Optional[int] = ..., retried: _Optional[int] = ..., failed: _Optional[int] = ..., errors: _Optional[_Mapping[str, int]] = ..., opens: _Optional[int] = ..., clicks: _Optional[int] = ..., opened: _Optional[int] = ..., clicked: _Optional[int] = ...) -> None: ...
