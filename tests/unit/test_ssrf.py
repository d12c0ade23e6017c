"""The SSRF guard's decisions: which addresses are refused, what the allow-list lifts."""

from __future__ import annotations

import ipaddress

import pytest

from delivery_svc.transport.ssrf import (
    TargetPolicy,
    address_refusal,
    check_url,
    checked_addresses,
    static_resolver,
)
from notify_core.errors import ConfigError, PermanentDeliveryError, TransientDeliveryError


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback"),
        ("10.0.0.5", "private"),
        ("172.16.3.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("239.1.2.3", "multicast"),
        ("ff02::1", "multicast"),
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "private"),
        ("255.255.255.255", "private"),
        ("192.0.2.10", "private"),
        ("198.18.0.1", "private"),
        ("fec0::1", "site-local"),
        ("::ffff:127.0.0.1", "loopback (IPv4 127.0.0.1 inside IPv6)"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("::10.0.0.5", "private (IPv4 10.0.0.5 inside IPv6)"),
        ("2002:a00:5::1", "private"),
        ("64:ff9b::a00:5", "private (IPv4 10.0.0.5 inside IPv6)"),
        ("64:ff9b::7f00:1", "loopback"),
    ],
)
def test_non_public_addresses_are_refused_with_the_reason(address: str, why: str) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None
    assert why in refusal


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "93.184.216.34",
        "100.128.0.1",
        "2606:4700::1111",
        "64:ff9b::808:808",
        "::ffff:8.8.8.8",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


def test_the_allow_list_lifts_the_rule_for_its_names_domains_and_networks() -> None:
    policy = TargetPolicy(allowed_hosts=("hooks.internal", "*.corp.example", "10.1.0.0/16"))
    loop = ipaddress.ip_address("127.0.0.1")
    assert policy.refusal("hooks.internal", loop) is None
    assert policy.refusal("HOOKS.internal.", loop) is None
    assert policy.refusal("a.b.corp.example", loop) is None
    assert policy.refusal("corp.example.evil", loop) == "loopback"
    assert policy.refusal("other", ipaddress.ip_address("10.1.200.3")) is None
    assert policy.refusal("other", ipaddress.ip_address("10.2.0.1")) == "private"
    assert TargetPolicy(allow_private=True).refusal("x", loop) is None


def test_a_malformed_allow_list_entry_is_refused() -> None:
    with pytest.raises(ConfigError, match="allowed_hosts"):
        TargetPolicy(allowed_hosts=("http://x/",))


def test_check_url_wants_https_and_a_public_literal() -> None:
    assert check_url("https://hooks.example.com/a?b=1", TargetPolicy()).host == "hooks.example.com"
    with pytest.raises(PermanentDeliveryError, match="https only"):
        check_url("http://hooks.example.com/", TargetPolicy())
    assert check_url("http://hooks.example.com/", TargetPolicy(allow_http=True)).port is None
    for bad in ("gopher://x/", "file:///etc/passwd", "not a url", "https:///nohost"):
        with pytest.raises(PermanentDeliveryError):
            check_url(bad, TargetPolicy(allow_http=True))
    with pytest.raises(PermanentDeliveryError, match=r"\[::1\]: is a loopback"):
        check_url("https://[::1]:8443/", TargetPolicy())


async def test_every_resolved_address_is_checked() -> None:
    resolve = static_resolver(
        {"public.test": ["8.8.8.8", "2606:4700::1111"], "mixed.test": ["8.8.8.8", "10.0.0.1"]}
    )
    assert await checked_addresses("public.test", 443, TargetPolicy(), resolve) == [
        "8.8.8.8",
        "2606:4700::1111",
    ]
    with pytest.raises(PermanentDeliveryError, match=r"mixed\.test: resolves to 10\.0\.0\.1"):
        await checked_addresses("mixed.test", 443, TargetPolicy(), resolve)
    with pytest.raises(PermanentDeliveryError, match="does not resolve"):
        await checked_addresses("missing.test", 443, TargetPolicy(), resolve)


async def test_a_dns_failure_for_now_is_transient() -> None:
    import socket

    async def failing(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(TransientDeliveryError, match="could not resolve"):
        await checked_addresses("flaky.test", 443, TargetPolicy(), failing)
