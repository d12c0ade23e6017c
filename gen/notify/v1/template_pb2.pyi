import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TemplateChannel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TEMPLATE_CHANNEL_UNSPECIFIED: _ClassVar[TemplateChannel]
    TEMPLATE_CHANNEL_INAPP: _ClassVar[TemplateChannel]
    TEMPLATE_CHANNEL_EMAIL: _ClassVar[TemplateChannel]
    TEMPLATE_CHANNEL_SMS: _ClassVar[TemplateChannel]
    TEMPLATE_CHANNEL_PUSH: _ClassVar[TemplateChannel]
    TEMPLATE_CHANNEL_WEBPUSH: _ClassVar[TemplateChannel]
    TEMPLATE_CHANNEL_WEBHOOK: _ClassVar[TemplateChannel]
    TEMPLATE_CHANNEL_LAYOUT: _ClassVar[TemplateChannel]
TEMPLATE_CHANNEL_UNSPECIFIED: TemplateChannel
TEMPLATE_CHANNEL_INAPP: TemplateChannel
TEMPLATE_CHANNEL_EMAIL: TemplateChannel
TEMPLATE_CHANNEL_SMS: TemplateChannel
TEMPLATE_CHANNEL_PUSH: TemplateChannel
TEMPLATE_CHANNEL_WEBPUSH: TemplateChannel
TEMPLATE_CHANNEL_WEBHOOK: TemplateChannel
TEMPLATE_CHANNEL_LAYOUT: TemplateChannel

class TemplateVariables(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class Template(_message.Message):
    __slots__ = ("name", "channel", "locale", "version", "subject", "body", "layout", "variables", "created_at")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    channel: TemplateChannel
    locale: str
    version: int
    subject: str
    body: str
    layout: str
    variables: TemplateVariables
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., channel: _Optional[_Union[TemplateChannel, str]] = ..., locale: _Optional[str] = ..., version: _Optional[int] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ..., layout: _Optional[str] = ..., variables: _Optional[_Union[TemplateVariables, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PublishTemplateRequest(_message.Message):
    __slots__ = ("name", "channel", "locale", "subject", "body", "layout", "variables")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    name: str
    channel: TemplateChannel
    locale: str
    subject: str
    body: str
    layout: str
    variables: TemplateVariables
    def __init__(self, name: _Optional[str] = ..., channel: _Optional[_Union[TemplateChannel, str]] = ..., locale: _Optional[str] = ..., subject: _Optional[str] = ..., body: _Optional[str] = ..., layout: _Optional[str] = ..., variables: _Optional[_Union[TemplateVariables, _Mapping]] = ...) -> None: ...

class PublishTemplateResponse(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ("name", "channel", "locale", "version", "fallback")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    name: str
    channel: TemplateChannel
    locale: str
    version: int
    fallback: bool
    def __init__(self, name: _Optional[str] = ..., channel: _Optional[_Union[TemplateChannel, str]] = ..., locale: _Optional[str] = ..., version: _Optional[int] = ..., fallback: _Optional[bool] = ...) -> None: ...

class GetTemplateResponse(_message.Message):
    __slots__ = ("template",)
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: Template
    def __init__(self, template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...

class ListTemplateVersionsRequest(_message.Message):
    __slots__ = ("name", "channel", "locale")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    name: str
    channel: TemplateChannel
    locale: str
    def __init__(self, name: _Optional[str] = ..., channel: _Optional[_Union[TemplateChannel, str]] = ..., locale: _Optional[str] = ...) -> None: ...

class ListTemplateVersionsResponse(_message.Message):
    __slots__ = ("templates",)
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ...) -> None: ...

class DeleteTemplateRequest(_message.Message):
    __slots__ = ("name", "channel", "locale")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    name: str
    channel: TemplateChannel
    locale: str
    def __init__(self, name: _Optional[str] = ..., channel: _Optional[_Union[TemplateChannel, str]] = ..., locale: _Optional[str] = ...) -> None: ...

class DeleteTemplateResponse(_message.Message):
    __slots__ = ("deactivated",)
    DEACTIVATED_FIELD_NUMBER: _ClassVar[int]
    deactivated: int
    def __init__(self, deactivated: _Optional[int] = ...) -> None: ...

class InlineTemplate(_message.Message):
    __slots__ = ("subject", "body", "layout", "variables")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    VARIABLES_FIELD_NUMBER: _ClassVar[int]
    subject: str
    body: str
    layout: str
    variables: TemplateVariables
    def __init__(self, subject: _Optional[str] = ..., body: _Optional[str] = ..., layout: _Optional[str] = ..., variables: _Optional[_Union[TemplateVariables, _Mapping]] = ...) -> None: ...

class TemplateNotification(_message.Message):
    __slots__ = ("id", "type", "title", "message", "user_id")
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    type: str
    title: str
    message: str
    user_id: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., title: _Optional[str] = ..., message: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class RenderTemplateRequest(_message.Message):
    __slots__ = ("name", "channel", "locale", "version", "template", "data", "notification")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LOCALE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    NOTIFICATION_FIELD_NUMBER: _ClassVar[int]
    name: str
    channel: TemplateChannel
    locale: str
    version: int
    template: InlineTemplate
    data: _struct_pb2.Struct
    notification: TemplateNotification
    def __init__(self, name: _Optional[str] = ..., channel: _Optional[_Union[TemplateChannel, str]] = ..., locale: _Optional[str] = ..., version: _Optional[int] = ..., template: _Optional[_Union[InlineTemplate, _Mapping]] = ..., data: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., notification: _Optional[_Union[TemplateNotification, _Mapping]] = ...) -> None: ...

class RenderTemplateResponse(_message.Message):
    __slots__ = ("subject", "html", "text", "body", "template")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    HTML_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    subject: str
    html: str
    text: str
    body: str
    template: Template
    def __init__(self, subject: _Optional[str] = ..., html: _Optional[str] = ..., text: _Optional[str] = ..., body: _Optional[str] = ..., template: _Optional[_Union[Template, _Mapping]] = ...) -> None: ...
