"""One assignee rule (SPEC §5, §7): ingest keeps exactly the assignees PATCH accepts.

Ingest once allowed 64 characters without "+", PATCH 90 with it, so ``user:a+b`` was accepted
by PATCH and silently dropped on ingest.
"""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.builders import ctx_of, make_group, occurrence
from tests.conftest import assert_error

VALID = ["user:a+b", "team:web", "user:" + "x" * 90, "team:a_b-c@d.e"]
INVALID = ["bob", "user:", "group:web", "user:" + "x" * 91, "user:ann\n", "user:a b", "User:ann"]
CASES = [(value, True) for value in VALID] + [(value, False) for value in INVALID]


@pytest.mark.parametrize(("assignee", "valid"), CASES)
def test_ingest_keeps_a_valid_assignee_and_drops_an_invalid_one(
    admin: TestClient, assignee: str, valid: bool
) -> None:
    answer = admin.post("/occurrences", json=occurrence(assignee=assignee))
    assert answer.status_code == 202, answer.text
    stored = admin.get(f"/issues/{answer.json()['issue_id']}").json()["assignee"]
    assert stored == (assignee if valid else None)


@pytest.mark.parametrize(("assignee", "valid"), CASES)
def test_patch_accepts_and_refuses_the_same_set(
    admin: TestClient, app: FastAPI, assignee: str, valid: bool
) -> None:
    group = make_group(ctx_of(app), substatus=3)
    patched = admin.patch(f"/issues/{group.id}", json={"assignee": assignee})
    if valid:
        assert patched.status_code == 200, patched.text
        assert patched.json()["assignee"] == assignee
    else:
        assert_error(patched, 422, "invalid_payload")
