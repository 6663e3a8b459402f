"""The URL guard: untrusted URLs never reach private, loopback, link-local or metadata addresses.

A URL is checked by scheme, then by every address its host resolves to. An address passes when it
is globally routable, or when the allowlist (``COUCHPOTATO_URL_ALLOWLIST``: comma-separated CIDRs
and host names, ``*.example.org`` for a domain and its subdomains) names it. The guard is applied
to the first URL here, and to every later connection (redirects, HLS segments, pages' sub-resources)
by the egress proxy in ``egress.py``, which connects to the very address that was checked so that a
second DNS answer cannot slip past (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .errors import SourceUnreachable, UrlRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NETWORK_SCHEMES = frozenset({"http", "https", "rtmp", "rtmps", "rtsp", "rtsps"})
DEFAULT_PORTS = {"http": 80, "https": 443, "rtmp": 1935, "rtmps": 443, "rtsp": 554, "rtsps": 322}

# Cloud metadata services; most are link-local anyway, listed so the refusal says what they are.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254")
)


def classify(ip: IPAddress) -> str | None:
    """Why ``ip`` is not a public address, or None when it is globally routable."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for attr, what in (
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_unspecified", "an unspecified address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private address"),
        ("is_reserved", "a reserved address"),
    ):
        if getattr(ip, attr):
            return what
    if not ip.is_global:
        return "a non-public address"
    return None


@dataclass(frozen=True)
class UrlGuard:
    """Decides which hosts and addresses untrusted URLs may reach.

    Attributes:
        networks: address ranges allowed although not public.
        hosts: host names allowed whatever they resolve to; an entry starting with ``*.`` allows a
            domain and its subdomains.
    """

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_allowlist(cls, spec: str | Iterable[str] | None) -> UrlGuard:
        if spec is None:
            return cls()
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in items:
            item = raw.strip().lower()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def host_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if host in self.hosts:
            return True
        return any(h.startswith("*.") and (host == h[2:] or host.endswith(h[1:])) for h in self.hosts)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why ``ip`` may not be reached, or None when it may."""
        why = classify(ip)
        if why is None:
            return None
        check = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped else ip
        if any(check.version == n.version and check in n for n in self.networks):
            return None
        return why

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Addresses of ``host`` that may be reached; raises UrlRefused if any answer is refused.

        Refusing the whole host when one of its answers is private (rather than filtering) keeps
        a rebinding name from being half-trusted.
        """
        literal = _literal(host)
        if literal is not None:
            addrs = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
                )
            except (socket.gaierror, UnicodeError) as e:
                raise SourceUnreachable(f"cannot resolve host {host!r}: {_gai_reason(e)}") from e
            addrs = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
        if self.host_allowed(host):
            return addrs
        for ip in addrs:
            why = self.refusal(ip)
            if why is not None:
                shown = host if literal is not None else f"{host} ({ip})"
                raise UrlRefused(f"refused to connect to {shown}: {why}; allow it with COUCHPOTATO_URL_ALLOWLIST")
        return addrs

    async def check_url(self, url: str) -> None:
        """Refuse a URL whose scheme is not a network media scheme or whose host is refused."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in NETWORK_SCHEMES:
            raise UrlRefused(f"refused URL scheme {scheme + ':' if scheme else '(none)'} in {url!r}")
        if not parts.hostname:
            raise UrlRefused(f"URL has no host: {url!r}")
        try:
            port = parts.port or DEFAULT_PORTS[scheme]
        except ValueError as e:
            raise UrlRefused(f"URL has an invalid port: {url!r}") from e
        await self.resolve(parts.hostname, port)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0])
    except ValueError:
        return None


def _gai_reason(e: Exception) -> str:
    if isinstance(e, socket.gaierror) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


__all__ = ["METADATA_ADDRESSES", "NETWORK_SCHEMES", "UrlGuard", "classify"]
