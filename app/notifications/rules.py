"""Pure rules of notifications: allowed receiver URLs and the retry schedule."""

from __future__ import annotations

import ipaddress
import socket
from datetime import timedelta
from urllib.parse import urlsplit

ALLOWED_SCHEMES = ("http", "https")
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 3600
RETRY_SPAN = timedelta(hours=24)


class UrlNotAllowed(ValueError):
    """A well-formed receiver URL that points at a private network."""


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host names literally, including legacy IPv4 forms (``127.1``, ``0x7f.1``)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # inet_aton accepts the shorthand, decimal and hex forms resolvers also accept.
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _private(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_unspecified


def check_url_shape(url: str) -> str:
    """The URL if it is an absolute http(s) URL with a host and no credentials, else ValueError."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on an invalid port
    except ValueError as exc:
        raise ValueError(f"invalid URL: {exc}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise ValueError("the URL must use http or https")
    if not host:
        raise ValueError("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise ValueError("credentials in the URL are not allowed; sign with the secret instead")
    return url


def check_url_allowed(url: str, *, allow_private_networks: bool) -> None:
    """Raise ``UrlNotAllowed`` for localhost or a literal private, loopback or link-local IP."""
    if allow_private_networks:
        return
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise UrlNotAllowed("localhost is not allowed as a webhook receiver")
    ip = _literal_ip(host)
    if ip is not None and _private(ip):
        raise UrlNotAllowed(f"{ip} is a private, loopback or link-local address")


def retry_delay(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` failed ones: 10 s doubling, at most 1 h."""
    exponent = max(attempts - 1, 0)
    seconds = RETRY_MAX_SECONDS if exponent > 12 else RETRY_BASE_SECONDS * 2**exponent
    return timedelta(seconds=min(seconds, RETRY_MAX_SECONDS))


def gives_up(created_age: timedelta) -> bool:
    """Whether a delivery that just failed has been retried long enough to be marked failed."""
    return created_age >= RETRY_SPAN
