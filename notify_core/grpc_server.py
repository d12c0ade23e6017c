"""gRPC bootstrap shared by every service: health, reflection, auth, error mapping.

``create_server(specs, address, auth)`` answers ``(server, port)`` so tests bind port 0.
Every service named in ``specs`` is reported SERVING by ``grpc.health.v1.Health`` under its
full name (and the server as a whole under ""), and listed by server reflection.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from notify_core.auth import Authenticator, bearer
from notify_core.errors import INTERNAL_MESSAGE, NotifyError, Unauthenticated
from notify_core.storable import check_message

log = logging.getLogger(__name__)

Req = TypeVar("Req")
Resp = TypeVar("Resp")


@dataclass(frozen=True)
class ServiceSpec:
    """One gRPC service to serve: its full name, its servicer and the generated adder."""

    full_name: str
    servicer: object
    add: Callable[[Any, grpc.aio.Server], None]


def grpc_errors(
    method: Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]],
) -> Callable[[Any, Req, grpc.aio.ServicerContext], Awaitable[Resp]]:
    """Map Notify's errors to status codes: the one place where that happens for gRPC.

    A request holding a string that cannot be stored is refused here, naming the field
    (:func:`~notify_core.storable.check_message`). Anything unexpected is a fault of ours,
    not the caller's: it is logged with its details and answered ``INTERNAL`` with a
    generic message, so that no SQL or stored row leaks."""

    @functools.wraps(method)
    async def wrapper(self: Any, request: Req, context: grpc.aio.ServicerContext) -> Resp:
        try:
            if isinstance(request, Message):
                check_message(request)
            return await method(self, request, context)
        except NotifyError as exc:
            await context.abort(exc.grpc_status, exc.message)
            raise  # unreachable: abort raises
        except grpc.aio.AbortError:
            raise
        except Exception:
            log.exception("%s failed", method.__qualname__)
            await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)
            raise  # unreachable: abort raises

    return wrapper


_OPEN_PREFIXES = ("/grpc.health.v1.", "/grpc.reflection.")


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Every ``notify.v1`` method needs ``authorization: Bearer <api key>``; health and
    reflection are open."""

    def __init__(self, auth: Authenticator) -> None:
        self._auth = auth

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method.startswith(_OPEN_PREFIXES):
            return await continuation(details)
        header = next(
            (v for k, v in details.invocation_metadata or () if k == "authorization"), None
        )
        try:
            self._auth.producer(bearer(header if isinstance(header, str) else None))
        except Unauthenticated as exc:
            message = exc.message

            async def deny(_request: Any, context: grpc.aio.ServicerContext) -> None:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

            return grpc.unary_unary_rpc_method_handler(deny)
        return await continuation(details)


def create_server(
    specs: Sequence[ServiceSpec], address: str, auth: Authenticator
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    server = grpc.aio.server(
        interceptors=[AuthInterceptor(auth)],
        options=[
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", 8 * 1024 * 1024),
        ],
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for spec in specs:
        spec.add(spec.servicer, server)
    names = [s.full_name for s in specs]
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind gRPC to {address}")
    return server, port, health_servicer


async def mark_serving(health_servicer: health.aio.HealthServicer, names: Sequence[str]) -> None:
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def mark_not_serving(
    health_servicer: health.aio.HealthServicer, names: Sequence[str]
) -> None:
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
