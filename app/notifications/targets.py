"""Pure rules of webhook targets: the host a URL names and the addresses a delivery may reach.

A receiver may only be a public unicast address. Every special-purpose range is refused, and
so is every IPv6 form that carries such an IPv4 address (mapped, translated, compatible, NAT64,
6to4), unless the operator allows private networks or lists the range in an allow-list.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Full stops that IDNA (and so httpx, which connects) reads as "." between labels.
UNICODE_FULL_STOPS = ("\u3002", "\uff0e", "\uff61")

CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_LEGACY_IPV4_CHARS = frozenset("0123456789abcdefx.")
_LOOPBACK = ipaddress.IPv4Address("127.0.0.1")


def normalise_host(host: str) -> str:
    """The ASCII host a client connects to: lower case, Unicode full stops as dots, IDNA-encoded.

    Raises ``ValueError`` for a name IDNA cannot encode (httpx refuses those URLs too).
    """
    host = host.lower()
    for stop in UNICODE_FULL_STOPS:
        host = host.replace(stop, ".")
    if host.isascii():
        return host
    try:
        return idna.encode(host).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"invalid host name: {exc}") from None


def literal_address(host: str) -> IPAddress | None:
    """The address a normalised host spells, legacy IPv4 forms (``127.1``, ``0x7f.1``) included."""
    # Some resolvers read "127.0.0.1." as the address; judge it as one.
    host = host.removesuffix(".")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # inet_aton reads the shorthand, integer, octal and hex forms that resolvers also accept.
    if host and host[0].isdigit() and set(host) <= _LEGACY_IPV4_CHARS:
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_localhost_name(host: str) -> bool:
    """Whether a normalised host is ``localhost`` or under it (always loopback, RFC 6761)."""
    name = host.rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, translated, compatible, NAT64, 6to4)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in net for net in (IPV4_TRANSLATED, IPV4_COMPATIBLE, NAT64_WELL_KNOWN)):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in NAT64_LOCAL_USE:
        # RFC 8215 lets the prefix length vary; a /96 translator puts it in the last 32 bits.
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _ipv4_refusal(ip: ipaddress.IPv4Address) -> str | None:
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in CGNAT:
        return "shared address space (CGNAT)"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


def _ipv6_refusal(ip: ipaddress.IPv6Address) -> str | None:
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local or ip.is_site_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip in NAT64_LOCAL_USE:
        return "local-use NAT64"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    if not ip.is_global:
        return "not globally routable"
    return None


def address_refusal(ip: IPAddress) -> str | None:
    """Why no webhook may reach ``ip`` (a special-purpose range), or None for public unicast."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _ipv4_refusal(ip)
    inner = embedded_ipv4(ip)
    if inner is not None:
        reason = _ipv4_refusal(inner)
        if reason is not None:
            return f"{reason} (embedded {inner})"
        if ip.ipv4_mapped is not None or ip in NAT64_WELL_KNOWN:
            # A translation of a public IPv4 address reaches that address and nothing else.
            return None
    return _ipv6_refusal(ip)


@dataclass(frozen=True)
class TargetPolicy:
    """Which addresses webhook deliveries may reach."""

    allow_private_networks: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()

    def _listed(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            inner = embedded_ipv4(ip)
            if inner is not None:
                candidates.append(inner)
        return any(c in net for c in candidates for net in self.allowed_networks)

    def refusal(self, ip: IPAddress) -> str | None:
        """Why a delivery may not reach ``ip`` under this policy, or None when it may."""
        if self.allow_private_networks or self._listed(ip):
            return None
        return address_refusal(ip)

    def host_refusal(self, host: str) -> str | None:
        """What the host alone tells (a literal address or a localhost name), before resolving."""
        ip = literal_address(host)
        if ip is not None:
            reason = self.refusal(ip)
            return None if reason is None else f"{ip} is {reason}"
        if is_localhost_name(host) and self.refusal(_LOOPBACK) is not None:
            return f"{host} is a loopback name"
        return None

    def addresses_refusal(self, host: str, addresses: Iterable[IPAddress]) -> str | None:
        """Why a name may not be used, given all its addresses (one refused is enough)."""
        for ip in addresses:
            if self.refusal(ip) is not None:
                return f"{host} resolves to a non-public address"
        return None
