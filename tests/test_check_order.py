"""The order a status change and a triage update check things in (docs/architecture.md).

A status change: authorise (the project) → find and lock the issue → replay a repeated ``id`` →
parse the requested status → plan the transition → apply. A triage ``PATCH``: authorise and
lock the visible issue → ``If-Match`` → parse → plan → apply. So a request with a wrong status
for an issue the caller cannot see answers 403/404, never a 422 that would tell it apart.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.builders import ctx_of, group_row, make_group, make_key, make_organization
from tests.conftest import assert_error, auth

BAD_STATUS = {"new_status": "deleted", "new_substatus": None}


def _change(fingerprint: str, project_id: int = 1, **extra: object) -> dict[str, object]:
    return {"fingerprint": [fingerprint], "project_id": project_id, **BAD_STATUS, **extra}


def test_a_status_change_authorises_before_it_parses(client: TestClient, app: FastAPI) -> None:
    ctx = ctx_of(app)
    make_group(ctx, fingerprint="fp")
    outsider = make_key(ctx, organization_id=make_organization(ctx).id, scopes=("ingest",))
    response = client.post("/status-changes", json=_change("fp"), headers=auth(outsider))
    assert_error(response, 403, "forbidden")


def test_a_status_change_finds_the_issue_before_it_parses(admin: TestClient, app: FastAPI) -> None:
    make_group(ctx_of(app), fingerprint="known")
    assert_error(admin.post("/status-changes", json=_change("unknown")), 404, "issue_not_found")


def test_a_repeated_id_is_answered_before_the_body_is_parsed(
    admin: TestClient, app: FastAPI
) -> None:
    group = make_group(ctx_of(app), fingerprint="fp", substatus=3)
    first = admin.post(
        "/status-changes",
        json=_change("fp", id="change-1", new_status="resolved"),
    )
    assert first.status_code == 200, first.text
    again = admin.post("/status-changes", json=_change("fp", id="change-1"))
    assert (again.status_code, again.json()) == (200, first.json())
    assert group_row(ctx_of(app), group.id).status == 1


def test_a_triage_update_finds_the_issue_before_it_parses(
    admin: TestClient, client: TestClient, app: FastAPI
) -> None:
    ctx = ctx_of(app)
    group = make_group(ctx)
    assert_error(
        admin.patch(f"/issues/{group.id + 1000}", json={"status": "deleted"}),
        404,
        "issue_not_found",
    )
    outsider = make_key(ctx, organization_id=make_organization(ctx).id, scopes=("triage",))
    assert_error(
        client.patch(f"/issues/{group.id}", json={"status": "deleted"}, headers=auth(outsider)),
        404,
        "issue_not_found",
    )


def test_a_triage_update_checks_if_match_before_it_parses(admin: TestClient, app: FastAPI) -> None:
    group = make_group(ctx_of(app))
    stale = admin.patch(
        f"/issues/{group.id}", json={"status": "deleted"}, headers={"If-Match": '"0-0"'}
    )
    assert_error(stale, 412, "precondition_failed")
    assert_error(
        admin.patch(f"/issues/{group.id}", json={"status": "deleted"}), 422, "unsupported_status"
    )
