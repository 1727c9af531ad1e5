"""Webhook targets: every spelling of a special-purpose address, names resolved at registration."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.notifications import egress
from app.notifications.rules import UrlNotAllowed, check_url_allowed, check_url_shape
from app.notifications.targets import (
    IPAddress,
    TargetPolicy,
    address_refusal,
    literal_address,
    normalise_host,
)
from tests.conftest import assert_error

BODY = {"secret": "s3cret", "events": ["issue.created"]}
PUBLIC = ipaddress.ip_address("93.184.215.14")
LOOPBACK = ipaddress.ip_address("127.0.0.1")

# Each spelling names an address in a special-purpose range; the comment says which.
REFUSED_URLS = [
    "http://127。0。0。1:8080/x",  # U+3002 ideographic full stops: loopback
    "http://10．0．0．1/",  # U+FF0E fullwidth full stops: private
    "http://169｡254｡169｡254/latest/meta-data",  # U+FF61 halfwidth full stops: link-local
    "http://127。0。0。1。/",  # with a trailing full stop
    "http://100.64.0.1/",  # shared address space (CGNAT)
    "http://100.127.255.254/",
    "http://[64:ff9b::7f00:1]/",  # NAT64 of 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
    "http://[64:ff9b:1::a00:1]/",  # local-use NAT64
    "http://[2002:7f00:1::]/",  # 6to4 of 127.0.0.1
    "http://[2002:a00:1::1]/",  # 6to4 of 10.0.0.1
    "http://[::127.0.0.1]/",  # IPv4-compatible
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped
    "http://[::ffff:0:127.0.0.1]/",  # IPv4-translated
    "http://[::ffff:10.1.2.3]/",
    "http://2130706433/",  # integer
    "http://0x7f.1/",  # hex shorthand
    "http://0177.0.0.1/",  # octal
    "http://127.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://[::]/",
    "http://[::1]/",
    "http://[fe80::1]/",
    "http://[fd12:3456::1]/",  # unique local
    "http://[ff02::1]/",  # multicast
    "http://localhost:8080/",
    "http://LOCALHOST./",
    "http://api.localhost/",
]


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[IPAddress]]:
    """The app's resolver answering from a table (names missing from it do not resolve)."""
    table: dict[str, list[IPAddress]] = {}

    def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in table:
            raise egress.TargetUnresolvable(host)
        return table[host]

    monkeypatch.setattr(egress, "resolve", resolve)
    return table


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_special_purpose_target_is_refused_at_registration(admin: TestClient, url: str) -> None:
    r = admin.post("/admin/projects/1/webhooks", json={"url": url, **BODY})
    assert_error(r, 422, "webhook_url_not_allowed")


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_every_spelling_is_refused_by_the_pure_rule_and_allowed_on_request(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        check_url_allowed(url, allow_private_networks=False)
    check_url_allowed(url, allow_private_networks=True)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://127。0。0。1:8080/x", "127.0.0.1"),
        ("http://10．0．0．1/", "10.0.0.1"),
        ("http://169｡254｡169｡254/", "169.254.169.254"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f.1/", "127.0.0.1"),
        ("http://[::ffff:0:127.0.0.1]/", "::ffff:0:7f00:1"),
    ],
)
def test_host_is_read_as_the_address_the_client_connects_to(url: str, address: str) -> None:
    host = normalise_host(urlsplit(url).hostname or "")
    assert literal_address(host) == ipaddress.ip_address(address)
    # httpx, which sends the deliveries, reads the Unicode spellings the same way.
    if not url.startswith(("http://2130706433", "http://0x")):
        assert ipaddress.ip_address(httpx.URL(url).host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.215.14", "2001:4860:4860::8888", "64:ff9b::808:808", "::ffff:8.8.8.8"],
)
def test_public_unicast_address_is_allowed(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("64:ff9b::7f00:1", "loopback (embedded 127.0.0.1)"),
        ("2002:a9fe:a9fe::", "link-local (embedded 169.254.169.254)"),
        ("::ffff:0:a00:1", "private (embedded 10.0.0.1)"),
        ("100.64.0.0", "shared address space (CGNAT)"),
        ("64:ff9b:1::808:808", "local-use NAT64"),
    ],
)
def test_embedded_ipv4_is_judged_as_ipv4(address: str, reason: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) == reason


def test_allow_list_admits_only_its_ranges() -> None:
    policy = TargetPolicy(allowed_networks=(ipaddress.ip_network("10.20.0.0/16"),))
    assert policy.refusal(ipaddress.ip_address("10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("::ffff:10.20.3.4")) is None
    assert policy.refusal(ipaddress.ip_address("10.21.0.1")) == "private"
    assert policy.refusal(ipaddress.ip_address("169.254.169.254")) == "link-local"


def test_host_idna_cannot_encode_is_an_invalid_url() -> None:
    with pytest.raises(ValueError, match="invalid host name"):
        check_url_shape("http://a\u200db.example/")


def test_name_resolving_to_loopback_is_refused_at_registration(
    admin: TestClient, resolver: dict[str, list[IPAddress]]
) -> None:
    resolver["hooks.example.com"] = [LOOPBACK]
    resolver["split.example.com"] = [PUBLIC, ipaddress.ip_address("fd00::5")]
    for url in ("https://hooks.example.com/x", "https://split.example.com/x"):
        r = admin.post("/admin/projects/1/webhooks", json={"url": url, **BODY})
        assert_error(r, 422, "webhook_url_not_allowed")
        assert "resolves to a non-public address" in r.json()["error"]["message"]


def test_unicode_name_is_resolved_in_its_idna_form(
    admin: TestClient, resolver: dict[str, list[IPAddress]]
) -> None:
    resolver["xn--bcher-kva.example"] = [LOOPBACK]
    r = admin.post("/admin/projects/1/webhooks", json={"url": "https://bücher。example/", **BODY})
    assert_error(r, 422, "webhook_url_not_allowed")
    resolver["xn--bcher-kva.example"] = [PUBLIC]
    r = admin.post("/admin/projects/1/webhooks", json={"url": "https://bücher。example/", **BODY})
    assert r.status_code == 201, r.text


def test_name_resolving_to_public_addresses_is_registered(
    admin: TestClient, resolver: dict[str, list[IPAddress]]
) -> None:
    resolver["hooks.example.com"] = [PUBLIC, ipaddress.ip_address("2606:2800:21f:cb07::1")]
    r = admin.post(
        "/admin/projects/1/webhooks", json={"url": "https://hooks.example.com/x", **BODY}
    )
    assert r.status_code == 201, r.text


def test_name_that_does_not_resolve_is_refused_with_its_own_code(admin: TestClient) -> None:
    r = admin.post("/admin/projects/1/webhooks", json={"url": "https://nowhere.invalid/", **BODY})
    assert_error(r, 422, "webhook_host_unresolvable")


def test_localhost_is_resolved_by_the_system_and_judged_by_its_addresses(
    app: FastAPI, admin: TestClient
) -> None:
    addresses = egress.resolve("localhost", 80)
    assert addresses
    assert all(ip.is_loopback for ip in addresses)
    settings = app.state.ctx.settings
    settings.webhook_allowed_networks = (ipaddress.ip_network("10.0.0.0/8"),)
    r = admin.post("/admin/projects/1/webhooks", json={"url": "http://localhost:8080/", **BODY})
    assert_error(r, 422, "webhook_url_not_allowed")
    # Listing the loopback ranges admits the name, once every address it resolves to is listed.
    settings.webhook_allowed_networks = (ipaddress.ip_network("127.0.0.0/8"),)
    if any(ip.version == 6 for ip in addresses):
        r = admin.post("/admin/projects/1/webhooks", json={"url": "http://localhost:8080/", **BODY})
        assert_error(r, 422, "webhook_url_not_allowed")
        settings.webhook_allowed_networks += (ipaddress.ip_network("::1/128"),)
    r = admin.post("/admin/projects/1/webhooks", json={"url": "http://localhost:8080/", **BODY})
    assert r.status_code == 201, r.text


def test_allow_private_networks_admits_every_spelling(app: FastAPI, admin: TestClient) -> None:
    app.state.ctx.settings.webhook_allow_private_networks = True
    for url in ("http://127。0。0。1:8080/x", "http://[64:ff9b::7f00:1]/", "http://localhost/"):
        r = admin.post("/admin/projects/1/webhooks", json={"url": url, **BODY})
        assert r.status_code == 201, r.text
