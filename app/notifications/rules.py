"""Pure rules of notifications: the event names, receiver URLs and the retry schedule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Literal, get_args
from urllib.parse import urlsplit

from app.notifications.targets import IPNetwork, TargetPolicy, normalise_host

EventName = Literal[
    "issue.created",
    "issue.regressed",
    "issue.escalating",
    "issue.resolved",
    "issue.ignored",
    "issue.unresolved",
]
"""A webhook event: what the admin API subscribes to and what a change notifies."""

ISSUE_CREATED: EventName = "issue.created"
ISSUE_REGRESSED: EventName = "issue.regressed"
ISSUE_ESCALATING: EventName = "issue.escalating"
ISSUE_RESOLVED: EventName = "issue.resolved"
ISSUE_IGNORED: EventName = "issue.ignored"
ISSUE_UNRESOLVED: EventName = "issue.unresolved"

# Every event name, in the order the API documents them.
EVENTS: tuple[EventName, ...] = get_args(EventName)

ALLOWED_SCHEMES = ("http", "https")
RETRY_BASE_SECONDS = 10
RETRY_MAX_SECONDS = 3600
RETRY_SPAN = timedelta(hours=24)


class UrlNotAllowed(ValueError):
    """A well-formed receiver URL whose host is, or resolves to, a non-public address."""


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
    normalise_host(host)
    return url


def url_host(url: str) -> tuple[str, int]:
    """The normalised host and the port a well-formed receiver URL connects to."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    return normalise_host(parts.hostname or ""), port


def check_url_allowed(
    url: str, *, allow_private_networks: bool, allowed_networks: Sequence[IPNetwork] = ()
) -> None:
    """Raise ``UrlNotAllowed`` when the URL alone shows a non-public target (before resolving).

    That is a literal address in a special-purpose range, however it is spelled, or a
    ``localhost`` name; a host name's addresses are judged once it is resolved.
    """
    policy = TargetPolicy(allow_private_networks, tuple(allowed_networks))
    reason = policy.host_refusal(url_host(url)[0])
    if reason is not None:
        raise UrlNotAllowed(reason)


def retry_delay(attempts: int) -> timedelta:
    """Wait before the next try after ``attempts`` failed ones: 10 s doubling, at most 1 h."""
    exponent = max(attempts - 1, 0)
    seconds = RETRY_MAX_SECONDS if exponent > 12 else RETRY_BASE_SECONDS * 2**exponent
    return timedelta(seconds=min(seconds, RETRY_MAX_SECONDS))


def gives_up(created_age: timedelta) -> bool:
    """Whether a delivery that just failed has been retried long enough to be marked failed."""
    return created_age >= RETRY_SPAN
