"""The PreferenceService servicer: preferences, device tokens and topic subscriptions."""

from __future__ import annotations

import grpc
from notify.v1 import preference_pb2 as pb
from notify.v1 import preference_pb2_grpc

from notify_core.checks import check_field, check_user_id
from notify_core.constants import MAX_DEVICE_ID
from notify_core.grpc_server import ServiceSpec, grpc_errors
from preference_svc.convert import (
    device_from_proto,
    device_to_proto,
    preferences_to_proto,
    topic_to_proto,
    update_to_json,
)
from preference_svc.devices import DeviceStore
from preference_svc.store import PreferenceStore
from preference_svc.topics import TopicStore, check_page, check_topic, check_user_ids
from preference_svc.validate import parse_preferences

FULL_NAME = "notify.v1.PreferenceService"


class PreferenceServicer(preference_pb2_grpc.PreferenceServiceServicer):  # type: ignore[misc]
    def __init__(
        self,
        preferences: PreferenceStore,
        devices: DeviceStore,
        topics: TopicStore,
        *,
        allow_http_webhooks: bool = False,
    ):
        self._prefs = preferences
        self._devices = devices
        self._topics = topics
        self._allow_http_webhooks = allow_http_webhooks

    @grpc_errors
    async def GetPreferences(
        self, request: pb.GetPreferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetPreferencesResponse:
        stored = await self._prefs.get(check_user_id(request.user_id))
        return pb.GetPreferencesResponse(preferences=preferences_to_proto(stored))

    @grpc_errors
    async def UpdatePreferences(
        self, request: pb.UpdatePreferencesRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdatePreferencesResponse:
        user_id = check_user_id(request.user_id)
        update = parse_preferences(
            update_to_json(request), allow_http_webhooks=self._allow_http_webhooks
        )
        stored = await self._prefs.update(user_id, update)
        return pb.UpdatePreferencesResponse(preferences=preferences_to_proto(stored))

    @grpc_errors
    async def RegisterDevice(
        self, request: pb.RegisterDeviceRequest, context: grpc.aio.ServicerContext
    ) -> pb.RegisterDeviceResponse:
        user_id = check_user_id(request.user_id)
        device, created = await self._devices.register(user_id, device_from_proto(request))
        return pb.RegisterDeviceResponse(device=device_to_proto(device), created=created)

    @grpc_errors
    async def ListDevices(
        self, request: pb.ListDevicesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDevicesResponse:
        devices = await self._devices.list(check_user_id(request.user_id))
        return pb.ListDevicesResponse(devices=[device_to_proto(d) for d in devices])

    @grpc_errors
    async def UnregisterDevice(
        self, request: pb.UnregisterDeviceRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnregisterDeviceResponse:
        user_id = check_user_id(request.user_id)
        device_id = check_field(request.id, "id", MAX_DEVICE_ID)
        device = await self._devices.unregister(user_id, device_id)
        return pb.UnregisterDeviceResponse(device=device_to_proto(device))

    @grpc_errors
    async def SubscribeTopic(
        self, request: pb.SubscribeTopicRequest, context: grpc.aio.ServicerContext
    ) -> pb.SubscribeTopicResponse:
        topic = check_topic(request.topic)
        added = await self._topics.subscribe(topic, check_user_ids(list(request.user_ids)))
        return pb.SubscribeTopicResponse(subscribed=added)

    @grpc_errors
    async def UnsubscribeTopic(
        self, request: pb.UnsubscribeTopicRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnsubscribeTopicResponse:
        topic = check_topic(request.topic)
        removed = await self._topics.unsubscribe(topic, check_user_ids(list(request.user_ids)))
        return pb.UnsubscribeTopicResponse(unsubscribed=removed)

    @grpc_errors
    async def ListTopicSubscribers(
        self, request: pb.ListTopicSubscribersRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTopicSubscribersResponse:
        topic = check_topic(request.topic)
        after, limit = check_page(request.after, request.limit)
        page = await self._topics.subscribers(topic, after, limit)
        return pb.ListTopicSubscribersResponse(user_ids=page.user_ids, next=page.next or "")

    @grpc_errors
    async def SetTopic(
        self, request: pb.SetTopicRequest, context: grpc.aio.ServicerContext
    ) -> pb.SetTopicResponse:
        topic = await self._topics.set_public(check_topic(request.topic), request.public)
        return pb.SetTopicResponse(topic=topic_to_proto(topic))

    @grpc_errors
    async def GetTopic(
        self, request: pb.GetTopicRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetTopicResponse:
        topic = await self._topics.get(check_topic(request.topic))
        return pb.GetTopicResponse(topic=topic_to_proto(topic))


def spec(
    preferences: PreferenceStore,
    devices: DeviceStore,
    topics: TopicStore,
    *,
    allow_http_webhooks: bool = False,
) -> ServiceSpec:
    """``allow_http_webhooks``: ``NOTIFY_WEBHOOK_ALLOW_HTTP``, for saved webhook URLs."""
    return ServiceSpec(
        FULL_NAME,
        PreferenceServicer(preferences, devices, topics, allow_http_webhooks=allow_http_webhooks),
        preference_pb2_grpc.add_PreferenceServiceServicer_to_server,
    )
