"""Per-project ingest rate limit: the token bucket rules and the 429 answers of the ingest routes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.occurrences.throttle import count_by_project
from app.ratelimit import TokenBuckets, retry_after_seconds
from tests.builders import make_key, occurrence
from tests.conftest import ADMIN_TOKEN, assert_error, auth


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate=2, burst=3, clock=clock)
    assert [buckets.take({"p": 1}) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take({"p": 1}) == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take({"p": 1}) == 0.0
    assert buckets.take({"p": 1}) > 0


def test_buckets_are_independent_per_key() -> None:
    buckets = TokenBuckets(rate=1, burst=1, clock=ManualClock())
    assert buckets.take({"a": 1}) == 0.0
    assert buckets.take({"b": 1}) == 0.0
    assert buckets.take({"a": 1}) > 0


def test_a_batch_larger_than_the_burst_passes_from_a_full_bucket_and_is_paid_back() -> None:
    clock = ManualClock()
    buckets = TokenBuckets(rate=10, burst=5, clock=clock)
    assert buckets.take({"p": 25}) == 0.0
    # 20 tokens of debt plus 1 for the next item, at 10 per second.
    assert buckets.take({"p": 1}) == pytest.approx(2.1)
    clock.now += 2.2
    assert buckets.take({"p": 1}) == 0.0


def test_refused_request_takes_nothing_from_any_bucket() -> None:
    buckets = TokenBuckets(rate=1, burst=2, clock=ManualClock())
    assert buckets.take({"b": 2}) == 0.0
    assert buckets.take({"a": 1, "b": 1}) > 0
    assert buckets.take({"a": 2}) == 0.0


def test_default_burst_is_one_second_of_traffic() -> None:
    assert TokenBuckets(rate=50, burst=0).burst == 50
    assert TokenBuckets(rate=0.1, burst=0).burst == 1


def test_items_are_counted_per_integer_project_id() -> None:
    items = [{"project_id": 1}, {"project_id": 1}, {"project_id": 2}, {"project_id": "3"}, 7]
    assert count_by_project(items) == {1: 2, 2: 1}
    assert count_by_project({"project_id": True}) == {}
    assert retry_after_seconds(0.01) == 1
    assert retry_after_seconds(2.1) == 3


@pytest.fixture
def limited(settings: Settings) -> Iterator[TestClient]:
    from app.main import create_app

    limited_settings = settings.model_copy(
        update={"ingest_rate_limit_per_second": 0.01, "ingest_rate_limit_burst": 3}
    )
    with TestClient(create_app(limited_settings), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield client


def test_rate_limit_is_off_by_default(admin: TestClient) -> None:
    for _ in range(5):
        assert admin.post("/occurrences", json=occurrence()).status_code == 202


def test_over_the_limit_answers_429_with_retry_after_and_stores_nothing(
    limited: TestClient,
) -> None:
    for _ in range(3):
        assert limited.post("/occurrences", json=occurrence()).status_code == 202
    refused = occurrence()
    response = limited.post("/occurrences", json=refused)
    error = assert_error(response, 429, "rate_limited")
    assert int(response.headers["Retry-After"]) >= 1
    assert error["details"]["projects"] == [1]
    stored = limited.get(f"/occurrences/{refused['id']}", params={"project_id": 1})
    assert stored.status_code == 404


def test_batch_counts_its_items(limited: TestClient) -> None:
    two = {"occurrences": [occurrence(), occurrence()]}
    assert limited.post("/occurrences/batch", json=two).status_code == 200
    response = limited.post("/occurrences/batch", json=two)
    assert_error(response, 429, "rate_limited")
    assert "Retry-After" in response.headers


def test_ingest_route_is_limited_too(limited: TestClient) -> None:
    assert (
        limited.post("/ingest", json=[occurrence(), occurrence(), occurrence()]).status_code == 200
    )
    assert_error(limited.post("/ingest", json=occurrence()), 429, "rate_limited")
    assert_error(limited.post("/ingest", json=[occurrence()]), 429, "rate_limited")


def test_other_projects_keep_their_own_budget(limited: TestClient) -> None:
    limited.post(
        "/admin/projects", json={"id": 2, "organization_id": 1, "slug": "two", "name": "Two"}
    )
    for _ in range(3):
        limited.post("/occurrences", json=occurrence())
    assert_error(limited.post("/occurrences", json=occurrence()), 429, "rate_limited")
    assert limited.post("/occurrences", json=occurrence(project_id=2)).status_code == 202


def test_a_key_of_another_organization_cannot_spend_a_projects_budget(
    limited: TestClient,
) -> None:
    limited.post("/admin/organizations", json={"id": 2, "slug": "other", "name": "Other"})
    ctx = limited.app.state.ctx  # type: ignore[attr-defined]
    outsider = make_key(ctx, organization_id=2, scopes=("ingest",))
    for _ in range(5):
        response = limited.post("/occurrences", json=occurrence(), headers=auth(outsider))
        assert response.status_code in (403, 404, 429)
    assert limited.post("/occurrences", json=occurrence()).status_code == 202
