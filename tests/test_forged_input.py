"""Forged input (issue 16, findings 3 and 4): hand-made cursors and NUL characters answer 422.

Both lists of targets come from the committed OpenAPI document (kept equal to the served one by
tests/test_openapi.py), so a new paginated route or a new string field is covered without editing
this file: every operation with a ``cursor`` query parameter gets forged cursors, every parameter
and every string a request body may hold gets a NUL, on SQLite and on PostgreSQL alike.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import hypothesis
import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from app.config import Settings
from app.issues import cursor as cursors
from app.models import Webhook, WebhookDelivery
from tests.builders import ctx_of, make_group, occurrence
from tests.conftest import assert_error

ROOT = Path(__file__).resolve().parent.parent
SCHEMA: dict[str, Any] = json.loads((ROOT / "openapi.json").read_text())
NUL = "\x00"

# -- what the schema says ------------------------------------------------------------------------


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in SCHEMA["paths"].items()
        for method, op in ops.items()
    ]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = SCHEMA["components"]["schemas"][name]
    return schema


def _variants(schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = _resolve(schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [v for s in schema[key] for v in _variants(s)]
    return [schema]


def _takes(schema: dict[str, Any], kind: str) -> bool:
    return any(v.get("type") == kind for v in _variants(schema))


PAGINATED = [
    (method, path)
    for method, path, op in _operations()
    if any(p["name"] == "cursor" and p["in"] == "query" for p in op.get("parameters", []))
]
REQUIRED_QUERY = {
    (method, path): [
        p["name"] for p in op.get("parameters", []) if p["in"] == "query" and p.get("required")
    ]
    for method, path, op in _operations()
}
WITH_PARAMETERS = [
    (method, path, p["name"], p["in"])
    for method, path, op in _operations()
    for p in op.get("parameters", [])
    if p["in"] in ("query", "path")
]
WITH_BODY = [
    (method, path, op["requestBody"]["content"]["application/json"]["schema"])
    for method, path, op in _operations()
    if "requestBody" in op
]


def nul_bodies(base: Any, schema: dict[str, Any], where: str = "") -> Iterator[tuple[str, Any]]:
    """``base`` with one string it may hold (a value, an array item, an object key) NUL-bearing."""
    variants = _variants(schema)
    if any(v.get("type") == "string" for v in variants) or isinstance(base, str):
        yield where or ".", f"a{NUL}b"
    if any(v.get("type") == "array" for v in variants):
        items = next(v.get("items", {}) for v in variants if v.get("type") == "array")
        item = base[0] if isinstance(base, list) and base else None
        for path, value in nul_bodies(item, items, f"{where}[0]"):
            rest = base[1:] if isinstance(base, list) else []
            yield path, [value, *rest]
    for variant in variants:
        if variant.get("type") != "object" and "properties" not in variant:
            continue
        current = base if isinstance(base, dict) else {}
        for name, sub in variant.get("properties", {}).items():
            for path, value in nul_bodies(current.get(name), sub, f"{where}.{name}"):
                yield path, {**current, name: value}
        if variant.get("additionalProperties") not in (None, False):
            yield f"{where}.<key>", {**current, f"k{NUL}": "v"}
            yield f"{where}.<value>", {**current, "k": f"v{NUL}"}


# -- a world every route can find its path parameters in ---------------------------------------

CUSTOM_TYPE = "nul-probe"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Webhook receivers on the loopback address may be registered (none is ever called)."""
    return settings.model_copy(update={"webhook_allow_private_networks": True})


@pytest.fixture
def world(admin: TestClient, app: FastAPI) -> dict[str, Any]:
    """One of everything a path names, and a valid request body of every operation."""
    ctx = ctx_of(app)
    occ = occurrence(fingerprint=["world"])
    assert admin.post("/occurrences", json=occ).status_code == 202
    issue_id = admin.get("/issues").json()["data"][0]["id"]
    category = {"id": 900, "slug": "probe-category", "description": "probe"}
    assert admin.post("/admin/categories", json=category).status_code == 201
    issue_type = {
        "type_id": 9000,
        "slug": CUSTOM_TYPE,
        "description": "probe type",
        "category": "probe-category",
    }
    assert admin.post("/admin/issue-types", json=issue_type).status_code == 201
    key = admin.post("/admin/organizations/1/keys", json={"name": "k", "scopes": ["read"]}).json()
    with ctx.db.write() as session:
        hook = Webhook(
            project_id=1, url="http://127.0.0.1:9/x", secret="s", events=["issue.created"]
        )
        session.add(hook)
        session.flush()
        for minutes in range(3):
            session.add(
                WebhookDelivery(
                    id=uuid.uuid4().hex,
                    webhook_id=hook.id,
                    event="issue.created",
                    body="{}",
                    created_at=ctx.now() - timedelta(minutes=minutes),
                )
            )
        session.commit()
        webhook_id = hook.id
    path_values = {
        "issue_id": issue_id,
        "occurrence_id": occ["id"],
        "organization_id": 1,
        "project_id": 1,
        "key_id": key["id"],
        "slug": CUSTOM_TYPE,
        "kind": "visible",
        "webhook_id": webhook_id,
    }
    bodies = {
        ("POST", "/occurrences"): occurrence(fingerprint=["nul-single"]),
        ("POST", "/occurrences/batch"): {"occurrences": [occurrence(fingerprint=["nul-batch"])]},
        ("POST", "/ingest"): occurrence(fingerprint=["nul-ingest"]),
        ("POST", "/status-changes"): {
            "fingerprint": ["world"],
            "project_id": 1,
            "new_status": "resolved",
            "new_substatus": None,
            "id": "change-1",
            "activity_data": {"why": "fixed"},
            "detector_id": "det",
        },
        ("PATCH", "/issues/{issue_id}"): {
            "status": "ignored",
            "substatus": "archived_until_condition_met",
            "priority": "high",
            "ignore_until": {"until": "2030-01-01T00:00:00Z"},
        },
        ("POST", "/admin/organizations"): {"slug": "nul-org", "name": "Org"},
        ("PATCH", "/admin/organizations/{organization_id}"): {"slug": "renamed", "name": "N"},
        ("POST", "/admin/projects"): {"organization_id": 1, "slug": "nul-proj", "name": "P"},
        ("PATCH", "/admin/projects/{project_id}"): {"slug": "renamed", "name": "P"},
        ("POST", "/admin/organizations/{organization_id}/keys"): {
            "name": "key",
            "scopes": ["read"],
        },
        ("POST", "/admin/categories"): {"id": 901, "slug": "nul-cat", "description": "d"},
        ("POST", "/admin/issue-types"): {
            "type_id": 9001,
            "slug": "nul-type",
            "description": "d",
            "category": "probe-category",
        },
        ("PATCH", "/admin/issue-types/{slug}"): {"description": "changed", "category": 900},
        ("PUT", "/admin/issue-types/{slug}/flags/{kind}"): {"stage": "ga", "organizations": []},
        ("POST", "/admin/projects/{project_id}/webhooks"): {
            "url": "http://127.0.0.1:9/hook",
            "secret": "s3cret",
            "events": ["issue.created"],
        },
    }
    query_values = {"project_id": 1}
    return {"path": path_values, "query": query_values, "bodies": bodies}


def url_of(path: str, values: dict[str, Any], nul_in: str | None = None) -> str:
    """The path with its parameters filled in; ``nul_in`` gets a NUL appended."""
    for name, value in values.items():
        text = f"{value}{NUL}" if name == nul_in else str(value)
        path = path.replace("{" + name + "}", quote(text, safe=""))
    assert "{" not in path, f"no value for a parameter of {path}"
    return path


# -- forged cursors ------------------------------------------------------------------------------


def b64(raw: bytes) -> str:
    """Base64url without padding, as the service writes cursors."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def dumps(value: Any) -> bytes:
    """JSON of anything, integers beyond 64 bits and lone surrogates included (orjson refuses)."""
    return json.dumps(value).encode()


def test_every_paginated_route_is_found() -> None:
    assert set(PAGINATED) >= {
        ("GET", "/issues"),
        ("GET", "/issues/{issue_id}/occurrences"),
        ("GET", "/issues/{issue_id}/activity"),
        ("GET", "/admin/webhooks/{webhook_id}/deliveries"),
    }


OVERFLOWING = "0001-01-01T00:00:00+01:00"  # one hour before year 1 once in UTC


@pytest.mark.parametrize(
    "cursor",
    [
        b64(orjson.dumps({"s": "last_seen", "v": {"t": OVERFLOWING}, "i": 1})),
        b64(orjson.dumps({"s": "first_seen", "v": {"t": "9999-12-31T23:59:59-14:00"}, "i": 1})),
        b64(orjson.dumps({"s": "detection_time", "v": {"t": OVERFLOWING}, "i": "a" * 32})),
        b64(f"{OVERFLOWING}|{'a' * 32}".encode()),
        b64(f"2026-01-01T00:00:00+00:00|{'a' * 31}{NUL}".encode()),
        "²",
    ],
)
@pytest.mark.parametrize(("method", "path"), PAGINATED)
def test_forged_cursor_is_an_invalid_payload(
    admin: TestClient, world: dict[str, Any], method: str, path: str, cursor: str
) -> None:
    response = admin.request(method, url_of(path, world["path"]), params={"cursor": cursor})
    assert_error(response, 422, "invalid_payload")


def test_cursor_of_another_sort_says_it_does_not_match(admin: TestClient, app: FastAPI) -> None:
    for _ in range(2):
        make_group(ctx_of(app))
    page = admin.get("/issues", params={"sort": "times_seen", "limit": 1}).json()
    response = admin.get("/issues", params={"sort": "last_seen", "cursor": page["next_cursor"]})
    error = assert_error(response, 422, "invalid_payload")
    assert error["message"] == "cursor does not match this query"
    garbage = admin.get("/issues", params={"cursor": "!!"})
    assert assert_error(garbage, 422, "invalid_payload")["message"] == "malformed cursor"


def test_decoded_cursor_time_is_in_utc() -> None:
    text = cursors.encode("last_seen", datetime(2026, 1, 1, 12, tzinfo=UTC), 5)
    value, _ = cursors.decode(text, "last_seen")
    assert value.utcoffset() == timedelta(0)


# Times at the ends of the range, in zones that push them past it once converted to UTC.
edge_times = st.one_of(
    st.integers(min_value=1, max_value=1439).map(lambda m: (datetime.min, m)),
    st.integers(min_value=-1439, max_value=-1).map(lambda m: (datetime.max, m)),
).map(lambda p: p[0].replace(tzinfo=timezone(timedelta(minutes=p[1]))).isoformat())
times = edge_times | st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat)
ids = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.uuids().map(lambda u: u.hex),
    st.just("a" * 31 + NUL),
    st.text(max_size=40),
    st.none() | st.booleans() | st.floats(allow_nan=False),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
STREAM_SORTS = ["last_seen", "first_seen", "times_seen", "priority"]


def forged_cursors(sort: str) -> st.SearchStrategy[str]:
    """Cursors no service made: near misses of the shapes the routes read, and junk."""
    hex_ids = st.uuids().map(lambda u: u.hex)
    fitting_ids = hex_ids if sort == "detection_time" else st.integers(min_value=1, max_value=2**40)
    near_miss = st.fixed_dictionaries(
        {
            "s": st.just(sort),
            "v": st.builds(lambda t: {"t": t}, times) | ids,
            "i": fitting_ids | ids,
        }
    ).map(dumps)
    delivery_log = st.tuples(times, hex_ids | ids).map(lambda p: f"{p[0]}|{p[1]}".encode())
    any_sort = st.fixed_dictionaries(
        {"s": st.sampled_from([*STREAM_SORTS, "detection_time"]) | st.text(), "v": json_values},
        optional={"i": ids},
    ).map(dumps)
    junk = st.one_of(
        any_sort.map(b64),
        st.text(max_size=60),  # not base64, unicode
        st.text(st.sampled_from("09²³¹①٣۴߁"), min_size=1, max_size=4),  # digits of any script
        st.binary(max_size=60).map(b64),
        json_values.map(lambda v: b64(dumps(v))),
        st.integers(min_value=-(2**80), max_value=2**80).map(str),
        st.text(max_size=30).map(lambda t: b64(f"{t}|{t}".encode())),
    )
    return (near_miss | delivery_log).map(b64) | junk


# Each paginated route, and the stream once per sort (its cursors differ by sort).
PAGINATED_SORTS = [
    (method, path, sort)
    for method, path in PAGINATED
    for sort in (STREAM_SORTS if path == "/issues" else ["detection_time"])
]


@pytest.mark.parametrize(("method", "path", "sort"), PAGINATED_SORTS)
@hypothesis.settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_forged_cursor_answers_200_or_422(
    admin: TestClient,
    world: dict[str, Any],
    method: str,
    path: str,
    sort: str,
    data: st.DataObject,
) -> None:
    params = {"cursor": data.draw(forged_cursors(sort), label="cursor")}
    if path == "/issues":
        params["sort"] = sort
    response = admin.request(method, url_of(path, world["path"]), params=params)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert response.json()["error"]["code"] == "invalid_payload"


# -- NUL characters ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "name", "location"), WITH_PARAMETERS)
def test_nul_in_any_parameter_is_an_invalid_payload(
    admin: TestClient, world: dict[str, Any], method: str, path: str, name: str, location: str
) -> None:
    params = {q: world["query"][q] for q in REQUIRED_QUERY[(method, path)]}
    if location == "query":
        url = url_of(path, world["path"])
        params[name] = f"a{NUL}b"
    else:
        url = url_of(path, world["path"], nul_in=name)
    response = admin.request(method, url, params=params, json=world["bodies"].get((method, path)))
    error = assert_error(response, 422, "invalid_payload")
    assert error["details"][0]["field"].split(".")[0] == name


def test_query_text_with_nul_is_refused_for_every_key(client: TestClient, app: FastAPI) -> None:
    from tests.builders import make_key
    from tests.conftest import auth

    token = make_key(ctx_of(app), scopes=("read",))
    response = client.get("/issues", params={"query": f"a{NUL}b"}, headers=auth(token))
    assert_error(response, 422, "invalid_payload")


@pytest.mark.parametrize(("method", "path", "schema"), WITH_BODY)
def test_nul_in_any_body_string_is_an_invalid_payload(
    admin: TestClient, world: dict[str, Any], method: str, path: str, schema: dict[str, Any]
) -> None:
    base = world["bodies"].get((method, path))
    assert base is not None, f"add a valid body of {method} {path} to the world fixture"
    url = url_of(path, world["path"])
    probes = list(nul_bodies(base, schema))
    assert probes, f"{method} {path} takes no string"
    for where, body in probes:
        response = admin.request(method, url, json=body)
        answer = response.json()
        if response.status_code == 200 and "results" in answer:  # a batch answers per item
            assert [r["status"] for r in answer["results"]] == [422], where
            assert answer["results"][0]["code"] == "invalid_payload", where
            continue
        assert response.status_code == 422, f"{where}: {response.status_code} {response.text}"
        assert answer["error"]["code"] == "invalid_payload", where
    # The same body without a NUL is accepted: the 422s above were the NUL's doing.
    response = admin.request(method, url, json=base)
    assert response.status_code < 300, response.text
