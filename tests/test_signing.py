"""Webhook signatures and the pure notification rules, without a database."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

import pytest

from app.notifications.rules import (
    UrlNotAllowed,
    check_url_allowed,
    check_url_shape,
    gives_up,
    retry_delay,
)
from app.notifications.signing import sign, verify

BODY = b'{"id":"abc","event":"issue.created"}'


def test_signature_is_hmac_sha256_hex_of_the_raw_body() -> None:
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert sign("s3cret", BODY) == f"sha256={expected}"


def test_verify_accepts_the_right_signature() -> None:
    assert verify("s3cret", BODY, sign("s3cret", BODY))


@pytest.mark.parametrize(
    "header",
    [None, "", "sha256=", "sha256=00", sign("other", BODY), sign("s3cret", BODY + b" ")],
)
def test_verify_refuses_a_wrong_signature(header: str | None) -> None:
    assert not verify("s3cret", BODY, header)


def test_verify_refuses_a_tampered_body() -> None:
    header = sign("s3cret", BODY)
    assert not verify("s3cret", BODY.replace(b"created", b"resolved"), header)


# Secrets may hold spaces (kept as given) and any Unicode character (UTF-8 encoded); bodies are
# signed as the exact bytes sent. The expected values follow the recipe of docs/webhooks.md
# ("Verifying a delivery"), written out here without the service's code.
AWKWARD_SECRETS = [
    "  s3cret with spaces  ",  # leading and trailing spaces are part of the secret
    "\tcafé-crème ",  # é/è: different bytes in UTF-8 and latin-1
    " ключ-секрет-鍵 ",  # not encodable as latin-1 at all
]
UNICODE_BODY = '{"id":"abc","issue":{"title":"Requête lente — 遅いクエリ ✓"}}'.encode()


def documented_is_authentic(secret: str, raw_body: bytes, signature_header: str) -> bool:
    """The receiver's check exactly as docs/webhooks.md shows it."""
    expected = "sha256=" + hmac.new(secret.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature_header or "")


@pytest.mark.parametrize("secret", AWKWARD_SECRETS)
@pytest.mark.parametrize("body", [BODY, UNICODE_BODY])
def test_signature_keys_with_the_secret_as_given_in_utf8(secret: str, body: bytes) -> None:
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    header = sign(secret, body)
    assert header == f"sha256={expected}"
    assert documented_is_authentic(secret, body, header)
    assert verify(secret, body, header)
    # The secret is not trimmed: the trimmed one is another key.
    assert not verify(secret.strip(), body, header)
    assert not documented_is_authentic(secret.strip(), body, header)


def test_signature_of_a_known_unicode_case() -> None:
    # Pinned digest, computed outside Python too:
    #   printf '%s' "$BODY" | openssl dgst -sha256 -hmac ' café ключ '
    assert sign(" café ключ ", UNICODE_BODY) == (
        "sha256=0fd8881ae18f78326cb608824a15a88ee82512c6e7f7fcd36a452ff26e353789"
    )


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/x", "http://example.com:8080/a?b=c", "http://10.0.0.1/"]
)
def test_http_and_https_urls_have_the_right_shape(url: str) -> None:
    assert check_url_shape(url) == url


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/", "example.com/hook", "https://", "http://u:p@example.com/", "x"],
)
def test_other_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        check_url_shape(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/",
        "http://api.localhost/",
        "http://127.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://10.1.2.3/",
        "http://192.168.0.10/",
        "http://172.16.5.4/",
        "http://169.254.169.254/latest/meta-data",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_private_addresses_are_refused_by_default(url: str) -> None:
    with pytest.raises(UrlNotAllowed):
        check_url_allowed(url, allow_private_networks=False)
    check_url_allowed(url, allow_private_networks=True)


@pytest.mark.parametrize(
    "url", ["https://hooks.example.com/", "http://8.8.8.8/", "http://[2001:4860::8888]/"]
)
def test_public_addresses_are_allowed(url: str) -> None:
    check_url_allowed(url, allow_private_networks=False)


def test_retry_delay_doubles_from_ten_seconds_up_to_an_hour() -> None:
    delays = [retry_delay(n).total_seconds() for n in range(1, 12)]
    assert delays[:6] == [10, 20, 40, 80, 160, 320]
    assert delays[-1] == 3600
    assert max(delays) == 3600
    assert retry_delay(1000) == timedelta(hours=1)


def test_gives_up_only_after_a_day_of_retries() -> None:
    assert not gives_up(timedelta(hours=23, minutes=59))
    assert gives_up(timedelta(hours=24))


# A secret with spaces and non-ASCII text, and a non-ASCII body: both are signed as UTF-8 bytes,
# the secret exactly as configured (no stripping). The digest was computed once, outside the
# service, as HMAC-SHA256 of the UTF-8 bytes of both.
UNICODE_SECRET = "  sé cret "
UMLAUT_BODY = '{"title":"Größe überschritten ✓"}'.encode()
UNICODE_SIGNATURE = "sha256=1f19127422365ca8fcc1583cbba8f3b153d166bbe136f4d9f9f3909a26fbbb49"


def test_secret_is_signed_as_utf8_bytes_with_its_spaces() -> None:
    assert sign(UNICODE_SECRET, UMLAUT_BODY) == UNICODE_SIGNATURE
    assert sign(UNICODE_SECRET, UMLAUT_BODY) != sign(UNICODE_SECRET.strip(), UMLAUT_BODY)
    latin1 = hmac.new(UNICODE_SECRET.encode("latin-1"), UMLAUT_BODY, hashlib.sha256)
    assert "sha256=" + latin1.hexdigest() != UNICODE_SIGNATURE


def test_verify_accepts_a_signature_with_surrounding_whitespace() -> None:
    assert verify(UNICODE_SECRET, UMLAUT_BODY, f"  {UNICODE_SIGNATURE}\t")
    assert not verify(UNICODE_SECRET.strip(), UMLAUT_BODY, UNICODE_SIGNATURE)


def test_verify_refuses_a_non_ascii_header_without_raising() -> None:
    assert not verify(UNICODE_SECRET, UMLAUT_BODY, UNICODE_SIGNATURE[:-1] + "é")
