"""How a service declares an HTTP route, and who may call it.

A route is declared once, as an :class:`HttpRoute`: its method, its path, its handler and
its :class:`Policy`, which it must name. :func:`mount` turns declarations into Starlette
routes that answer errors as :func:`notify_core.http.guarded` does and check the policy
before the handler runs, so no handler authenticates by hand:

``PRODUCER``
    An API key (``Authorization: Bearer <key>``). A route whose path names ``{user_id}``
    acts on that user: after the key, the id is checked (:func:`check_user_id`) and
    handed to the handler.
``USER``
    A user's JWT; the handler gets the user id (the token's ``sub``).
``PUBLIC``
    No credentials at all; the declaration says why in ``note`` (health; links whose
    signed token is the authority; provider webhooks that verify their own signatures).
``SELF``
    The endpoint authenticates itself, and ``note`` says how (the WebSocket and the event
    stream take their token from the query, as browsers cannot set headers there).

A handler that acts on a user (``USER``, and ``PRODUCER`` on a ``{user_id}`` path) takes
``(request, user_id)``; every other HTTP handler takes ``(request)``; a ``WEBSOCKET``
route's takes the WebSocket. A declaration that gets this wrong fails when it is made.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from notify_core.auth import Authenticator, bearer
from notify_core.checks import check_user_id
from notify_core.http import Handler, guarded

UserHandler = Callable[[Request, str], Awaitable[Response]]
"""A handler of a route that acts on one user, given that user's (checked) id."""
SocketHandler = Callable[[WebSocket], Awaitable[None]]

WEBSOCKET = "WEBSOCKET"
"""The method of a WebSocket route (its upgrade request)."""


class Policy(StrEnum):
    """Who may call a route; see the module's docstring."""

    PRODUCER = "producer"
    USER = "user"
    PUBLIC = "public"
    SELF = "self"


PRODUCER, USER, PUBLIC, SELF = Policy.PRODUCER, Policy.USER, Policy.PUBLIC, Policy.SELF


@dataclass(frozen=True, slots=True)
class HttpRoute:
    """One route of the edge: ``GET /notifications`` for ``USER``, served by ``handler``."""

    method: str
    path: str
    policy: Policy
    handler: Handler | UserHandler | SocketHandler
    note: str = ""
    """Why a ``PUBLIC`` route needs no credentials, or how a ``SELF`` one checks them."""

    def __post_init__(self) -> None:
        if not isinstance(self.policy, Policy):
            raise TypeError(f"{self}: the policy must be a Policy")
        if self.policy in (PUBLIC, SELF) and not self.note:
            raise ValueError(f"{self.method} {self.path}: a {self.policy} route says why")
        if self.method == WEBSOCKET and self.policy is not SELF:
            raise ValueError(f"{self.method} {self.path}: a WebSocket authenticates itself")
        wanted = 2 if self.acts_on_user else 1
        if len(inspect.signature(self.handler).parameters) != wanted:
            raise TypeError(f"{self.method} {self.path}: the handler takes {wanted} arguments")

    @property
    def acts_on_user(self) -> bool:
        """Whether the handler is given a user id (``USER``; ``PRODUCER`` on ``{user_id}``)."""
        return self.policy is USER or (self.policy is PRODUCER and "{user_id}" in self.path)


def mount(routes: Iterable[HttpRoute], auth: Authenticator) -> list[BaseRoute]:
    """Starlette routes for ``routes``: errors answered by ``guarded``, the policy checked
    with ``auth`` before each handler runs."""
    return [_mounted(route, auth) for route in routes]


def _mounted(route: HttpRoute, auth: Authenticator) -> BaseRoute:
    if route.method == WEBSOCKET:
        return WebSocketRoute(route.path, cast(SocketHandler, route.handler))
    return Route(route.path, guarded(_checked(route, auth)), methods=[route.method])


def _checked(route: HttpRoute, auth: Authenticator) -> Handler:
    """``route``'s handler behind its policy."""
    if route.acts_on_user:
        return _given_user(route, auth)
    handler = cast(Handler, route.handler)
    if route.policy is not PRODUCER:
        return handler

    async def as_producer(request: Request) -> Response:
        auth.producer(bearer(request.headers.get("authorization")))
        return await handler(request)

    return as_producer


def _given_user(route: HttpRoute, auth: Authenticator) -> Handler:
    handler = cast(UserHandler, route.handler)
    if route.policy is USER:

        async def as_user(request: Request) -> Response:
            return await handler(request, auth.user(bearer(request.headers.get("authorization"))))

        return as_user

    async def for_user(request: Request) -> Response:
        auth.producer(bearer(request.headers.get("authorization")))
        return await handler(request, check_user_id(str(request.path_params["user_id"])))

    return for_user
