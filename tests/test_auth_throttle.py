"""Failed authentications are limited per client address; a valid token is never refused for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.auth.throttle import FailureLimit, client_key
from app.config import Settings
from tests.builders import ctx_of, make_key, occurrence
from tests.conftest import ADMIN_TOKEN, assert_error, auth

BURST = 3
PER_MINUTE = 6  # one more wrong token every 10 s


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"auth_failures_per_minute": PER_MINUTE, "auth_failures_burst": BURST}
    )


@pytest.fixture
def ticks(app: FastAPI) -> Ticks:
    """The failure budget's clock (installed before the first request)."""
    clock = Ticks()
    ctx_of(app).auth_failures = FailureLimit(per_minute=PER_MINUTE, burst=BURST, clock=clock)
    return clock


@contextmanager
def _from(app: FastAPI, host: str) -> Iterator[TestClient]:
    """A client of ``app`` connecting from ``host``."""
    with TestClient(app, raise_server_exceptions=False, client=(host, 40000)) as c:
        yield c


@pytest.fixture
def attacker(app: FastAPI, ticks: Ticks) -> Iterator[TestClient]:
    with _from(app, "203.0.113.7") as c:
        yield c


def _exhaust(client: TestClient, path: str = "/issues") -> None:
    for n in range(BURST):
        error = assert_error(
            client.get(path, headers=auth(f"ipk_wrong{n}")), 401, "unauthenticated"
        )
        assert error["message"] == "unknown token"


def test_wrong_tokens_beyond_the_burst_answer_429_with_retry_after(
    attacker: TestClient, ticks: Ticks
) -> None:
    _exhaust(attacker)
    throttled = attacker.get("/issues", headers=auth("ipk_wrong-again"))
    error = assert_error(throttled, 429, "rate_limited")
    assert error["message"] == "too many failed authentications from this address"
    assert throttled.headers["retry-after"] == "10"
    # A token that was wrong before stays throttled (the cached answer is not a way around).
    assert_error(attacker.get("/issues", headers=auth("ipk_wrong0")), 429, "rate_limited")
    ticks.now += 10  # one failure's worth refilled
    assert_error(attacker.get("/issues", headers=auth("ipk_wrong0")), 401, "unauthenticated")
    assert_error(attacker.get("/issues", headers=auth("ipk_wrong0")), 429, "rate_limited")


def test_valid_tokens_from_a_throttled_address_are_answered(
    app: FastAPI, attacker: TestClient
) -> None:
    key = make_key(ctx_of(app), scopes=("read", "ingest"))
    _exhaust(attacker)
    assert_error(attacker.get("/issues", headers=auth("ipk_wrong")), 429, "rate_limited")
    assert attacker.get("/issues", headers=auth(ADMIN_TOKEN)).status_code == 200
    # The key is not cached (auth_cache_seconds=0 in the tests): looked up and accepted.
    assert attacker.get("/issues", headers=auth(key)).status_code == 200
    assert attacker.post("/occurrences", json=occurrence(), headers=auth(key)).status_code == 202
    # Scope and tenancy answers are unchanged for a throttled address.
    assert_error(attacker.get("/admin/organizations", headers=auth(key)), 403, "forbidden")


def test_other_addresses_keep_their_own_budget(app: FastAPI, attacker: TestClient) -> None:
    _exhaust(attacker)
    assert_error(attacker.get("/issues", headers=auth("ipk_wrong")), 429, "rate_limited")
    with _from(app, "203.0.113.8") as neighbour:
        assert_error(neighbour.get("/issues", headers=auth("ipk_wrong")), 401, "unauthenticated")


def test_missing_tokens_are_not_counted(attacker: TestClient) -> None:
    for _ in range(BURST * 3):
        error = assert_error(attacker.get("/issues"), 401, "unauthenticated")
        assert error["message"] == "missing bearer token"
    _exhaust(attacker)


@pytest.mark.parametrize("cache_seconds", [0.0, 60.0])
def test_ingest_fast_path_applies_the_same_budget(settings: Settings, cache_seconds: float) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"auth_cache_seconds": cache_seconds}))
    ctx_of(app).auth_failures = FailureLimit(per_minute=PER_MINUTE, burst=BURST, clock=Ticks())
    with _from(app, "198.51.100.1") as client:
        key = make_key(ctx_of(app), scopes=("ingest",))
        assert client.post("/occurrences", json=occurrence(), headers=auth(key)).status_code == 202
        for n in range(BURST):
            wrong = client.post("/occurrences", json=occurrence(), headers=auth(f"ipk_no{n}"))
            assert_error(wrong, 401, "unauthenticated")
        for path in ("/occurrences", "/occurrences/batch"):
            body = occurrence() if path == "/occurrences" else {"occurrences": [occurrence()]}
            assert_error(client.post(path, json=body, headers=auth("ipk_no0")), 429, "rate_limited")
        # With the cache on, this is the fast path's answer; without, the framework's.
        assert client.post("/occurrences", json=occurrence(), headers=auth(key)).status_code == 202


def test_limit_off_answers_401_forever(settings: Settings) -> None:
    from app.main import create_app

    app = create_app(settings.model_copy(update={"auth_failures_per_minute": 0}))
    with _from(app, "198.51.100.2") as client:
        for n in range(BURST * 3):
            wrong = client.get("/issues", headers=auth(f"ipk_wrong{n}"))
            assert_error(wrong, 401, "unauthenticated")


def test_defaults_limit_failures() -> None:
    per_minute = Settings.model_fields["auth_failures_per_minute"].default
    burst = Settings.model_fields["auth_failures_burst"].default
    assert per_minute > 0
    limit = FailureLimit(per_minute=per_minute, burst=burst, clock=Ticks())
    waits = [limit.failed("192.0.2.1") for _ in range(int(burst) + 1)]
    assert waits[:-1] == [0.0] * int(burst)
    assert waits[-1] > 0


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.1", "192.0.2.1"),
        (None, "unknown"),
        ("", "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_client_key_groups_an_ipv6_host_by_its_64(host: str | None, key: str) -> None:
    assert client_key(host) == key


def test_one_ipv6_64_shares_a_budget() -> None:
    limit = FailureLimit(per_minute=PER_MINUTE, burst=1, clock=Ticks())
    assert limit.failed("2001:db8::1") == 0.0
    assert limit.failed("2001:db8::2") > 0
    assert limit.failed("2001:db8:0:1::1") == 0.0
