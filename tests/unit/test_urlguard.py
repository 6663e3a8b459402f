from __future__ import annotations

import ipaddress

import pytest

from couchpotato.errors import SourceUnreachable, UrlRefused
from couchpotato.urlguard import UrlGuard, classify


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_non_public_addresses_are_classified(address: str, why: str) -> None:
    reason = classify(ipaddress.ip_address(address))
    assert reason is not None and why in reason


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert classify(ipaddress.ip_address(address)) is None


def test_allowlist_parses_cidrs_and_hosts() -> None:
    g = UrlGuard.from_allowlist(" 127.0.0.0/8, media.internal ,*.corp.example,, 10.0.0.5")
    assert g.refusal(ipaddress.ip_address("127.0.0.9")) is None
    assert g.refusal(ipaddress.ip_address("10.0.0.5")) is None
    assert g.refusal(ipaddress.ip_address("10.0.0.6")) is not None
    assert g.refusal(ipaddress.ip_address("::ffff:127.0.0.1")) is None
    assert g.host_allowed("media.internal") and g.host_allowed("MEDIA.internal.")
    assert g.host_allowed("a.b.corp.example") and g.host_allowed("corp.example")
    assert not g.host_allowed("evilcorp.example")


async def test_literal_private_url_is_refused_with_the_fix_named() -> None:
    with pytest.raises(UrlRefused, match=r"loopback.*COUCHPOTATO_URL_ALLOWLIST"):
        await UrlGuard().check_url("http://127.0.0.1:8080/a.mp3")


async def test_numeric_host_forms_are_resolved_before_checking() -> None:
    # 2130706433 is 127.0.0.1 written as one integer; getaddrinfo understands it.
    with pytest.raises(UrlRefused):
        await UrlGuard().check_url("http://2130706433/a.mp3")


async def test_names_resolving_to_loopback_are_refused() -> None:
    with pytest.raises(UrlRefused, match=r"localhost \(127\.0\.0\.1|localhost \(::1"):
        await UrlGuard().check_url("http://localhost/a.mp3")


async def test_allowlisted_address_passes() -> None:
    await UrlGuard.from_allowlist("127.0.0.0/8").check_url("http://127.0.0.1:9/a.mp3")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/a", "concat:a|b", "gopher://x/"])
async def test_only_network_media_schemes(url: str) -> None:
    with pytest.raises(UrlRefused, match="scheme"):
        await UrlGuard().check_url(url)


async def test_unresolvable_host_is_unreachable_not_refused() -> None:
    with pytest.raises(SourceUnreachable, match="cannot resolve"):
        await UrlGuard().check_url("http://no-such-host.invalid/a.mp3")
