"""Reaching a webhook receiver: resolve its host, judge every address, connect to a judged one.

The host is resolved once per registration and once per attempt, and the TCP connection goes
to an address judged a moment before, never to whatever the name resolves to by then: a name
cannot be re-pointed at the service's own network (DNS rebinding) between check and connect.
The Host header and the TLS server name (SNI, certificate check) keep the name.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

import httpx

from app.config import Settings
from app.notifications.rules import UrlNotAllowed, check_url_allowed, url_host
from app.notifications.targets import IPAddress, TargetPolicy, literal_address


class TargetUnresolvable(Exception):
    """A receiver host name that resolves to no address."""


@dataclass(frozen=True)
class Target:
    """A receiver host with the addresses it may be reached at, all judged allowed."""

    host: str
    port: int
    addresses: tuple[IPAddress, ...]
    is_name: bool


def policy_of(settings: Settings) -> TargetPolicy:
    """The target policy the settings ask for."""
    return TargetPolicy(
        allow_private_networks=settings.webhook_allow_private_networks,
        allowed_networks=settings.webhook_allowed_networks,
    )


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses a host name resolves to, in the system resolver's order, without repeats."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise TargetUnresolvable(host) from None
    addresses: list[IPAddress] = []
    for family, *_, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = ipaddress.ip_address(sockaddr[0])
        if ip not in addresses:
            addresses.append(ip)
    if not addresses:
        raise TargetUnresolvable(host)
    return addresses


def check_target(url: str, policy: TargetPolicy) -> Target:
    """The receiver of a well-formed URL with its addresses, resolved and judged now.

    Raises ``UrlNotAllowed`` when the host is, or resolves to (any one address is enough), an
    address the policy refuses, and ``TargetUnresolvable`` when the name does not resolve.
    """
    check_url_allowed(
        url,
        allow_private_networks=policy.allow_private_networks,
        allowed_networks=policy.allowed_networks,
    )
    host, port = url_host(url)
    literal = literal_address(host)
    if literal is not None:
        return Target(host, port, (literal,), is_name=False)
    addresses = resolve(host, port)
    reason = policy.addresses_refusal(host, addresses)
    if reason is not None:
        raise UrlNotAllowed(reason)
    return Target(host, port, tuple(addresses), is_name=True)


def _host_header(url: httpx.URL, target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if url.port is None else f"{host}:{url.port}"


def post(
    client: httpx.Client, url: str, target: Target, *, content: bytes, headers: dict[str, str]
) -> int:
    """POST to the receiver over a connection to one of its judged addresses; the status code.

    The addresses are tried in order while connecting fails; the answer's body is never read.
    """
    original = httpx.URL(url)
    headers = {**headers, "Host": _host_header(original, target)}
    extensions = {"sni_hostname": target.host} if target.is_name else {}

    def send_to(ip: IPAddress) -> int:
        pinned = original.copy_with(host=str(ip))
        with client.stream(
            "POST", pinned, content=content, headers=headers, extensions=extensions
        ) as response:
            return response.status_code

    *others, last = target.addresses
    for ip in others:
        try:
            return send_to(ip)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            continue
    return send_to(last)
