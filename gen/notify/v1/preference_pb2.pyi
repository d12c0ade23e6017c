import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DigestFrequency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIGEST_FREQUENCY_UNSPECIFIED: _ClassVar[DigestFrequency]
    DIGEST_FREQUENCY_DAILY: _ClassVar[DigestFrequency]
    DIGEST_FREQUENCY_WEEKLY: _ClassVar[DigestFrequency]

class DevicePlatform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_PLATFORM_UNSPECIFIED: _ClassVar[DevicePlatform]
    DEVICE_PLATFORM_FCM: _ClassVar[DevicePlatform]
    DEVICE_PLATFORM_APNS: _ClassVar[DevicePlatform]
    DEVICE_PLATFORM_WEBPUSH: _ClassVar[DevicePlatform]
DIGEST_FREQUENCY_UNSPECIFIED: DigestFrequency
DIGEST_FREQUENCY_DAILY: DigestFrequency
DIGEST_FREQUENCY_WEEKLY: DigestFrequency
DEVICE_PLATFORM_UNSPECIFIED: DevicePlatform
DEVICE_PLATFORM_FCM: DevicePlatform
DEVICE_PLATFORM_APNS: DevicePlatform
DEVICE_PLATFORM_WEBPUSH: DevicePlatform

class ChannelSwitches(_message.Message):
    __slots__ = ("inapp", "email", "sms", "push", "webpush", "webhook")
    INAPP_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    SMS_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    WEBPUSH_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    inapp: bool
    email: bool
    sms: bool
    push: bool
    webpush: bool
    webhook: bool
    def __init__(self, inapp: _Optional[bool] = ..., email: _Optional[bool] = ..., sms: _Optional[bool] = ..., push: _Optional[bool] = ..., webpush: _Optional[bool] = ..., webhook: _Optional[bool] = ...) -> None: ...

class PerTypeSwitches(_message.Message):
    __slots__ = ("types",)
    class TypesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ChannelSwitches
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ChannelSwitches, _Mapping]] = ...) -> None: ...
    TYPES_FIELD_NUMBER: _ClassVar[int]
    types: _containers.MessageMap[str, ChannelSwitches]
    def __init__(self, types: _Optional[_Mapping[str, ChannelSwitches]] = ...) -> None: ...

class QuietHours(_message.Message):
    __slots__ = ("start", "end", "timezone", "high_breaks_through")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    HIGH_BREAKS_THROUGH_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    timezone: str
    high_breaks_through: bool
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., timezone: _Optional[str] = ..., high_breaks_through: _Optional[bool] = ...) -> None: ...

class Digest(_message.Message):
    __slots__ = ("enabled", "frequency", "hour", "weekday")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    HOUR_FIELD_NUMBER: _ClassVar[int]
    WEEKDAY_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    frequency: DigestFrequency
    hour: int
    weekday: int
    def __init__(self, enabled: _Optional[bool] = ..., frequency: _Optional[_Union[DigestFrequency, str]] = ..., hour: _Optional[int] = ..., weekday: _Optional[int] = ...) -> None: ...

class Preferences(_message.Message):
    __slots__ = ("user_id", "channels", "per_type", "quiet_hours", "digest", "email", "phone", "webhook_url", "has_push_device", "has_webpush_subscription")
    class PerTypeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ChannelSwitches
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ChannelSwitches, _Mapping]] = ...) -> None: ...
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PER_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUIET_HOURS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    HAS_PUSH_DEVICE_FIELD_NUMBER: _ClassVar[int]
    HAS_WEBPUSH_SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channels: ChannelSwitches
    per_type: _containers.MessageMap[str, ChannelSwitches]
    quiet_hours: QuietHours
    digest: Digest
    email: str
    phone: str
    webhook_url: str
    has_push_device: bool
    has_webpush_subscription: bool
    def __init__(self, user_id: _Optional[str] = ..., channels: _Optional[_Union[ChannelSwitches, _Mapping]] = ..., per_type: _Optional[_Mapping[str, ChannelSwitches]] = ..., quiet_hours: _Optional[_Union[QuietHours, _Mapping]] = ..., digest: _Optional[_Union[Digest, _Mapping]] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., webhook_url: _Optional[str] = ..., has_push_device: _Optional[bool] = ..., has_webpush_subscription: _Optional[bool] = ...) -> None: ...

class GetPreferencesRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class GetPreferencesResponse(_message.Message):
    __slots__ = ("preferences",)
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    preferences: Preferences
    def __init__(self, preferences: _Optional[_Union[Preferences, _Mapping]] = ...) -> None: ...

class UpdatePreferencesRequest(_message.Message):
    __slots__ = ("user_id", "channels", "per_type", "quiet_hours", "clear_quiet_hours", "digest", "email", "phone", "webhook_url")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    PER_TYPE_FIELD_NUMBER: _ClassVar[int]
    QUIET_HOURS_FIELD_NUMBER: _ClassVar[int]
    CLEAR_QUIET_HOURS_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_URL_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    channels: ChannelSwitches
    per_type: PerTypeSwitches
    quiet_hours: QuietHours
    clear_quiet_hours: bool
    digest: Digest
    email: str
    phone: str
    webhook_url: str
    def __init__(self, user_id: _Optional[str] = ..., channels: _Optional[_Union[ChannelSwitches, _Mapping]] = ..., per_type: _Optional[_Union[PerTypeSwitches, _Mapping]] = ..., quiet_hours: _Optional[_Union[QuietHours, _Mapping]] = ..., clear_quiet_hours: _Optional[bool] = ..., digest: _Optional[_Union[Digest, _Mapping]] = ..., email: _Optional[str] = ..., phone: _Optional[str] = ..., webhook_url: _Optional[str] = ...) -> None: ...

class UpdatePreferencesResponse(_message.Message):
    __slots__ = ("preferences",)
    PREFERENCES_FIELD_NUMBER: _ClassVar[int]
    preferences: Preferences
    def __init__(self, preferences: _Optional[_Union[Preferences, _Mapping]] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("id", "user_id", "platform", "token", "device_id", "device_name", "active", "created_at", "last_used_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    user_id: str
    platform: DevicePlatform
    token: str
    device_id: str
    device_name: str
    active: bool
    created_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., user_id: _Optional[str] = ..., platform: _Optional[_Union[DevicePlatform, str]] = ..., token: _Optional[str] = ..., device_id: _Optional[str] = ..., device_name: _Optional[str] = ..., active: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RegisterDeviceRequest(_message.Message):
    __slots__ = ("user_id", "platform", "token", "device_id", "device_name")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_NAME_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    platform: DevicePlatform
    token: str
    device_id: str
    device_name: str
    def __init__(self, user_id: _Optional[str] = ..., platform: _Optional[_Union[DevicePlatform, str]] = ..., token: _Optional[str] = ..., device_id: _Optional[str] = ..., device_name: _Optional[str] = ...) -> None: ...

class RegisterDeviceResponse(_message.Message):
    __slots__ = ("device", "created")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    device: Device
    created: bool
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ("user_id",)
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    def __init__(self, user_id: _Optional[str] = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices",)
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ...) -> None: ...

class UnregisterDeviceRequest(_message.Message):
    __slots__ = ("user_id", "id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    id: str
    def __init__(self, user_id: _Optional[str] = ..., id: _Optional[str] = ...) -> None: ...

class UnregisterDeviceResponse(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: Device
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ...) -> None: ...

class SubscribeTopicRequest(_message.Message):
    __slots__ = ("topic", "user_ids")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, topic: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SubscribeTopicResponse(_message.Message):
    __slots__ = ("subscribed",)
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    subscribed: int
    def __init__(self, subscribed: _Optional[int] = ...) -> None: ...

class UnsubscribeTopicRequest(_message.Message):
    __slots__ = ("topic", "user_ids")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    topic: str
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, topic: _Optional[str] = ..., user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class UnsubscribeTopicResponse(_message.Message):
    __slots__ = ("unsubscribed",)
    UNSUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    unsubscribed: int
    def __init__(self, unsubscribed: _Optional[int] = ...) -> None: ...

class ListTopicSubscribersRequest(_message.Message):
    __slots__ = ("topic", "after", "limit")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    topic: str
    after: str
    limit: int
    def __init__(self, topic: _Optional[str] = ..., after: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ListTopicSubscribersResponse(_message.Message):
    __slots__ = ("user_ids", "next")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    next: str
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., next: _Optional[str] = ...) -> None: ...

class Topic(_message.Message):
    __slots__ = ("name", "public")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    name: str
    public: bool
    def __init__(self, name: _Optional[str] = ..., public: _Optional[bool] = ...) -> None: ...

class SetTopicRequest(_message.Message):
    __slots__ = ("topic", "public")
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_FIELD_NUMBER: _ClassVar[int]
    topic: str
    public: bool
    def __init__(self, topic: _Optional[str] = ..., public: _Optional[bool] = ...) -> None: ...

class SetTopicResponse(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: Topic
    def __init__(self, topic: _Optional[_Union[Topic, _Mapping]] = ...) -> None: ...

class GetTopicRequest(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: str
    def __init__(self, topic: _Optional[str] = ...) -> None: ...

class GetTopicResponse(_message.Message):
    __slots__ = ("topic",)
    TOPIC_FIELD_NUMBER: _ClassVar[int]
    topic: Topic
    def __init__(self, topic: _Optional[_Union[Topic, _Mapping]] = ...) -> None: ...
