"""Which webhook targets Notify may connect to: the server-side request forgery (SSRF) guard.

Webhook URLs come from users, so a URL is whatever an attacker wants it to be: the cloud
metadata service (``169.254.169.254``), an admin port on loopback, a database on the
private network. The rules:

- only ``http`` and ``https``, and ``https`` unless ``NOTIFY_WEBHOOK_ALLOW_HTTP=true``;
- the host is resolved and **every** address it resolves to must be public: one loopback,
  private (RFC 1918, IPv6 ULA), link-local, multicast, reserved, unspecified, shared
  (CGNAT ``100.64.0.0/10``), documentation or other not globally routable address refuses
  the target, and so does an IPv6 address carrying such an IPv4 one (IPv4-mapped,
  IPv4-compatible, 6to4, Teredo, NAT64 ``64:ff9b::/96``);
- ``NOTIFY_WEBHOOK_ALLOW_PRIVATE=true`` lifts the address rule; ``NOTIFY_WEBHOOK_ALLOWED_HOSTS``
  lifts it for the host names (``*.domain`` for a domain) and networks (CIDRs) it lists.

The check runs where the connection is made (:mod:`delivery_svc.transport.guarded_http`),
on the very addresses then connected to, so a name that resolves to a public address for
the check and to a private one a moment later (DNS rebinding) gains nothing.
:func:`check_url` is the early, cheap part that needs no DNS.

A refused target raises :class:`~notify_core.errors.PermanentDeliveryError` naming the
host and why; retrying cannot help.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from delivery_svc.config_webhook import WebhookSettings, parse_allowed_hosts
from notify_core.errors import PermanentDeliveryError, TransientDeliveryError

if TYPE_CHECKING:
    import httpx

PROVIDER: Final = "webhook"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host, port) -> addresses``: DNS, or whatever stands in for it."""

_SHARED = ipaddress.IPv4Network("100.64.0.0/10")
_METADATA = ipaddress.IPv4Address("169.254.169.254")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_NO_SUCH_NAME = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, when it stands for one."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in _NAT64 or (ip in _V4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why a webhook may not go to ``ip`` without being allowed, or None if it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            why = address_refusal(embedded)
            if why is not None:
                return f"{why} (IPv4 {embedded} inside IPv6)"
            if ip.ipv4_mapped is not None or ip in _NAT64:
                return None  # the packets go to that public IPv4 address
        if ip.scope_id is not None:
            return "scoped (link-local)"
    checks: tuple[tuple[bool, str], ...] = (
        (ip.is_unspecified, "unspecified"),
        (ip.is_loopback, "loopback"),
        (ip == _METADATA, "link-local (the cloud metadata service)"),
        (ip.is_link_local, "link-local"),
        (ip.is_multicast, "multicast"),
        (ip in _SHARED, "shared address space (CGNAT, 100.64.0.0/10)"),
        (isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local, "site-local"),
        (ip.is_private, "private"),
        (ip.is_reserved, "reserved"),
        (not ip.is_global, "not globally routable"),
    )
    return next((why for hit, why in checks if hit), None)


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class TargetPolicy:
    """Where webhooks may go; see the module's rules."""

    allow_private: bool = False
    allow_http: bool = False
    allowed_hosts: tuple[str, ...] = ()
    """Host names, ``*.domain`` patterns, IPs and CIDRs (checked and normalised)."""
    _names: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        entries = parse_allowed_hosts(self.allowed_hosts, "allowed_hosts")
        object.__setattr__(self, "allowed_hosts", entries)
        networks = tuple(ipaddress.ip_network(e) for e in entries if "/" in e)
        names = [e for e in entries if "/" not in e]
        object.__setattr__(self, "_networks", networks)
        object.__setattr__(self, "_names", frozenset(n for n in names if n[0] != "*"))
        object.__setattr__(self, "_suffixes", tuple(n[1:] for n in names if n[0] == "*"))

    @classmethod
    def from_settings(cls, webhook: WebhookSettings) -> TargetPolicy:
        return cls(webhook.allow_private, webhook.allow_http, webhook.allowed_hosts)

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (a name) is on the allow-list, whatever it resolves to."""
        host = host.lower().rstrip(".")
        return host in self._names or any(host.endswith(s) for s in self._suffixes)

    def address_allowed(self, ip: IPAddress) -> bool:
        return any(ip.version == n.version and ip in n for n in self._networks)

    def refusal(self, host: str, ip: IPAddress) -> str | None:
        """Why ``host`` may not be reached at ``ip`` under this policy, or None."""
        if self.allow_private or self.host_allowed(host) or self.address_allowed(ip):
            return None
        return address_refusal(ip)


def _host_label(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def check_url(url: str, policy: TargetPolicy) -> httpx.URL:
    """The parsed URL when its scheme and (literal) host pass; no DNS is used here."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise PermanentDeliveryError(PROVIDER, f"the webhook URL is not a URL ({exc})") from None
    if parsed.scheme not in ("http", "https"):
        raise PermanentDeliveryError(
            PROVIDER, f"the webhook URL must be https:// (got {parsed.scheme or 'no'} scheme)"
        )
    if not parsed.host:
        raise PermanentDeliveryError(PROVIDER, "the webhook URL has no host")
    host = _host_label(parsed.host)
    if parsed.scheme == "http" and not policy.allow_http:
        raise PermanentDeliveryError(
            PROVIDER,
            f"refused http://{host}: webhooks go over https only "
            "(NOTIFY_WEBHOOK_ALLOW_HTTP=true allows plain http)",
        )
    literal = _parse_ip(parsed.host)
    if literal is not None:
        why = policy.refusal(parsed.host, literal)
        if why is not None:
            raise _refused(parsed.host, literal, why)
    return parsed


def _refused(host: str, ip: IPAddress, why: str) -> PermanentDeliveryError:
    target = _host_label(host)
    at = "" if host == str(ip) else f" resolves to {ip}, which"
    return PermanentDeliveryError(
        PROVIDER,
        f"refused webhook target {target}:{at} is a {why} address; allow it with "
        "NOTIFY_WEBHOOK_ALLOWED_HOSTS or NOTIFY_WEBHOOK_ALLOW_PRIVATE=true",
    )


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (``getaddrinfo`` off the event loop), in order."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    seen: dict[str, None] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        seen[str(sockaddr[0])] = None
    return list(seen)


async def checked_addresses(
    host: str, port: int, policy: TargetPolicy, resolver: Resolver = system_resolver
) -> list[str]:
    """The addresses to connect to for ``host``, all allowed, in the resolver's order.

    Raises :class:`PermanentDeliveryError` when the name does not exist or any address
    is refused, :class:`TransientDeliveryError` when DNS fails for now.
    """
    literal = _parse_ip(host.strip("[]"))
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            addresses = await resolver(host, port)
        except socket.gaierror as exc:
            if exc.errno in _NO_SUCH_NAME:
                raise PermanentDeliveryError(
                    PROVIDER, f"webhook host {host} does not resolve ({exc.strerror})"
                ) from None
            raise TransientDeliveryError(
                PROVIDER, f"could not resolve webhook host {host} ({exc.strerror})"
            ) from None
        except OSError as exc:
            raise TransientDeliveryError(
                PROVIDER, f"could not resolve webhook host {host} ({exc})"
            ) from None
    if not addresses:
        raise PermanentDeliveryError(PROVIDER, f"webhook host {host} has no address")
    for text in addresses:
        ip = _parse_ip(text)
        if ip is None:
            raise PermanentDeliveryError(
                PROVIDER, f"webhook host {host} resolved to {text!r}, not an address"
            )
        why = policy.refusal(host, ip)
        if why is not None:
            raise _refused(host, ip, why)
    return addresses


def static_resolver(table: dict[str, Iterable[str]]) -> Resolver:
    """A resolver answering from ``table`` (split-horizon names, tests); others fail NONAME."""

    async def resolve(host: str, port: int) -> list[str]:
        key = host.lower().rstrip(".")
        if key not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(table[key])

    return resolve
