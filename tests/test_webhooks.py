"""Webhooks end to end: outbox, a real HTTP receiver, retries, the post-process gate, admin API."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.context import AppContext
from app.issues.serialize import issue_payload
from app.logs import configure_logging
from app.metrics import REGISTRY
from app.models import Group, Organization, Project, RolloutFlag, WebhookDelivery
from app.notifications import egress
from app.notifications.delivery import REFUSED_TARGET, deliver_due
from app.notifications.outbox import enqueue, post_process_enabled, render_queued
from app.notifications.signing import verify
from tests.builders import ctx_of, occurrence
from tests.conftest import FakeClock, assert_error

SECRET = "whsec-test"  # noqa: S105
UNRELEASED_TYPE = 2001  # profile_file_io_main_thread
ALL_EVENTS = [
    "issue.created",
    "issue.regressed",
    "issue.escalating",
    "issue.resolved",
    "issue.ignored",
    "issue.unresolved",
]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings, allowing receivers on 127.0.0.1."""
    return settings.model_copy(update={"webhook_allow_private_networks": True})


# --- a real receiver -------------------------------------------------------------------------


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records requests and answers queued statuses (then 200)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    always: int | None = None
    gate: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Received) -> int:
        with self.lock:
            self.requests.append(request)
            if self.always is not None:
                return self.always
            return self.statuses.pop(0) if self.statuses else 200


class ReceiverServer(ThreadingHTTPServer):
    """The receiver's HTTP server, with room for every connection the workers open at once.

    ``socketserver`` listens with a backlog of 5 by default; when more connections than that
    arrive together (several delivery workers, each with its own pool), the kernel may refuse
    or reset some, and the service rightly records those as retries the receiver never saw.
    """

    request_queue_size = 128


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running receiver, shut down after the test."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            state.arrived.set()
            if state.gate is not None:
                state.gate.wait(timeout=10)
            code = state.answer(request)
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ReceiverServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield state
    finally:
        if state.gate is not None:
            state.gate.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- builders --------------------------------------------------------------------------------


@pytest.fixture
def ctx(app: FastAPI, client: TestClient) -> AppContext:
    """The app's context (lifespan started, so project 1 exists)."""
    context: AppContext = app.state.ctx
    return context


def register(admin: TestClient, url: str, events: list[str] | None = None, project: int = 1) -> int:
    """Register a webhook through the admin API; returns its id."""
    r = admin.post(
        f"/admin/projects/{project}/webhooks",
        json={"url": url, "secret": SECRET, "events": events or ALL_EVENTS},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


_hashes = iter(range(1, 1_000_000))


def create_issue(
    ctx: AppContext,
    *,
    type_id: int = 1,
    project_id: int = 1,
    notify_created: bool | None = None,
    title: str = "Slow query",
) -> tuple[int, int]:
    """Create an issue as ingest would and queue ``issue.created``; returns (issue id, queued)."""
    now = ctx.now()
    with ctx.db.write() as session:
        project = session.get(Project, project_id)
        assert project is not None
        if notify_created is None:
            notify_created = post_process_enabled(
                session, ctx, project_id=project_id, type_id=type_id
            )
        group = Group(
            project_id=project_id,
            type_id=type_id,
            hash=f"{next(_hashes):032x}",
            short_id=project.next_short_id,
            title=title,
            subtitle="SELECT * FROM t",
            culprit="db.query",
            level="warning",
            status=0,
            substatus=7,
            first_seen=now,
            last_seen=now,
            times_seen=1,
            latest_detection_time=now,
            notify_created=notify_created,
            created_at=now,
            updated_at=now,
        )
        project.next_short_id += 1
        session.add(group)
        session.flush()
        queued = enqueue(session, ctx, group, "issue.created", now=now)
        render_queued(session)
        session.commit()
        return group.id, queued


def notify(ctx: AppContext, issue_id: int, event: str) -> int:
    """Queue ``event`` for an existing issue, in its own transaction."""
    with ctx.db.write() as session:
        group = session.get(Group, issue_id)
        assert group is not None
        queued = enqueue(session, ctx, group, event, now=ctx.now())
        render_queued(session)
        session.commit()
        return queued


def set_post_process(ctx: AppContext, stage: str, organizations: list[int] | None = None) -> None:
    """Set the post-process flag of the unreleased test type."""
    with ctx.db.write() as session:
        flag = session.get(RolloutFlag, (UNRELEASED_TYPE, "post_process"))
        if flag is None:
            flag = RolloutFlag(type_id=UNRELEASED_TYPE, kind="post_process")
            session.add(flag)
        flag.stage = stage
        flag.organizations = organizations or []
        session.commit()


def deliveries(ctx: AppContext) -> list[WebhookDelivery]:
    """Every outbox row, oldest first."""
    with ctx.db.read() as session:
        stmt = select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        rows = list(session.scalars(stmt))
        session.expunge_all()
        return rows


def log_of(admin: TestClient, webhook_id: int, **params: Any) -> dict[str, Any]:
    """The delivery log page of a webhook."""
    r = admin.get(f"/admin/webhooks/{webhook_id}/deliveries", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# --- delivery --------------------------------------------------------------------------------


def test_signature_uses_the_secret_as_given_and_the_utf8_body_sent(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    """A secret with spaces around it and non-ASCII characters, an issue title that is not ASCII:
    the receiver checks with the recipe of docs/webhooks.md, written out here."""
    secret = "  clé secrète — 秘密  "  # noqa: S105
    r = admin.post(
        "/admin/projects/1/webhooks",
        json={"url": receiver.url, "secret": secret, "events": ["issue.created"]},
    )
    assert r.status_code == 201, r.text
    title = "Requête lente — 遅いクエリ ✓"
    create_issue(ctx, title=title)

    assert deliver_due(ctx)["delivered"] == 1

    [request] = receiver.requests
    assert json.loads(request.body.decode("utf-8"))["issue"]["title"] == title
    expected = "sha256=" + hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-issue-platform-signature"] == expected
    stripped = hmac.new(secret.strip().encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-issue-platform-signature"] != "sha256=" + stripped


def test_created_issue_is_posted_with_signed_body_and_headers(
    ctx: AppContext, admin: TestClient, receiver: Receiver, clock: FakeClock
) -> None:
    hook = register(admin, receiver.url)
    issue_id, queued = create_issue(ctx)
    assert queued == 1
    assert receiver.requests == []  # queued, not sent in the change's transaction

    summary = deliver_due(ctx)

    assert summary == {"claimed": 1, "delivered": 1, "retry": 0, "failed": 0}
    [request] = receiver.requests
    headers = request.headers
    assert request.path == "/hook"
    assert headers["content-type"] == "application/json"
    assert headers["x-issue-platform-event"] == "issue.created"
    assert headers["x-issue-platform-timestamp"] == str(int(clock.now.timestamp()))
    assert headers["x-issue-platform-signature"].startswith("sha256=")
    assert verify(SECRET, request.body, headers["x-issue-platform-signature"])
    assert not verify("wrong", request.body, headers["x-issue-platform-signature"])

    body = request.json()
    assert set(body) == {"id", "event", "created_at", "issue"}
    assert body["id"] == headers["x-issue-platform-delivery"]
    assert len(body["id"]) == 32
    assert body["event"] == "issue.created"
    assert body["created_at"] == "2026-11-02T12:00:00Z"
    with ctx.db.read() as session:
        group = session.get(Group, issue_id)
        assert group is not None
        assert body["issue"] == issue_payload(session, group, ctx.registry)
    assert body["issue"]["id"] == issue_id
    assert body["issue"]["type"] == "error"
    assert body["issue"]["status"] == "unresolved"
    assert body["issue"]["substatus"] == "new"
    assert body["issue"]["short_id"] == "DEFAULT-1"

    [entry] = log_of(admin, hook)["data"]
    assert entry["id"] == body["id"]
    assert entry["event"] == "issue.created"
    assert entry["issue_id"] == issue_id
    assert entry["state"] == "delivered"
    assert entry["attempts"] == 1
    assert entry["last_status_code"] == 200
    assert entry["last_error"] is None
    assert entry["delivered_at"] == "2026-11-02T12:00:00Z"

    assert deliver_due(ctx)["claimed"] == 0  # delivered once, never again


def test_failed_delivery_is_retried_after_back_off(
    ctx: AppContext, admin: TestClient, receiver: Receiver, clock: FakeClock
) -> None:
    hook = register(admin, receiver.url)
    receiver.statuses = [500]
    create_issue(ctx)

    assert deliver_due(ctx) == {"claimed": 1, "delivered": 0, "retry": 1, "failed": 0}
    [entry] = log_of(admin, hook)["data"]
    assert entry["state"] == "pending"
    assert entry["attempts"] == 1
    assert entry["last_status_code"] == 500
    assert entry["last_error"] == "HTTP 500"
    assert entry["next_attempt_at"] == "2026-11-02T12:00:10Z"

    clock.advance(seconds=9)
    assert deliver_due(ctx)["claimed"] == 0  # not due yet
    clock.advance(seconds=1)
    assert deliver_due(ctx)["delivered"] == 1

    first, second = receiver.requests
    assert first.body == second.body  # same delivery id and body on every attempt
    assert first.headers["x-issue-platform-delivery"] == second.headers["x-issue-platform-delivery"]
    [entry] = log_of(admin, hook)["data"]
    assert entry["state"] == "delivered"
    assert entry["attempts"] == 2
    assert entry["last_status_code"] == 200
    assert entry["last_error"] is None


def test_back_off_doubles_between_attempts(
    ctx: AppContext, admin: TestClient, receiver: Receiver, clock: FakeClock
) -> None:
    register(admin, receiver.url)
    receiver.always = 503
    create_issue(ctx)
    waits = []
    for _ in range(4):
        deliver_due(ctx)
        [row] = deliveries(ctx)
        waits.append((row.next_attempt_at - clock.now).total_seconds())
        clock.now = row.next_attempt_at
    assert waits == [10, 20, 40, 80]


def test_unreachable_receiver_records_the_error(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    hook = register(admin, f"http://127.0.0.1:{closed_port}/nobody")
    create_issue(ctx)

    assert deliver_due(ctx)["retry"] == 1
    [entry] = log_of(admin, hook)["data"]
    assert entry["state"] == "pending"
    assert entry["last_status_code"] is None
    assert "ConnectError" in entry["last_error"]


def test_delivery_fails_for_good_only_after_a_day_of_retries(
    ctx: AppContext, admin: TestClient, receiver: Receiver, clock: FakeClock
) -> None:
    hook = register(admin, receiver.url)
    receiver.always = 500
    start = clock.now
    create_issue(ctx)
    for _ in range(100):
        summary = deliver_due(ctx)
        [row] = deliveries(ctx)
        if row.state == "failed":
            break
        assert summary["retry"] == 1
        assert clock.now - start < timedelta(hours=24)
        clock.now = row.next_attempt_at
    assert row.state == "failed"
    assert clock.now - start >= timedelta(hours=24)
    assert clock.now - start < timedelta(hours=25)
    assert row.attempts == 33
    assert len(receiver.requests) == row.attempts
    assert log_of(admin, hook)["data"][0]["state"] == "failed"
    clock.advance(days=2)
    assert deliver_due(ctx)["claimed"] == 0


def test_receiver_redirect_is_not_followed(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    register(admin, receiver.url)
    receiver.statuses = [302]
    create_issue(ctx)
    assert deliver_due(ctx)["retry"] == 1
    assert len(receiver.requests) == 1


def test_slow_receiver_holds_no_database_lock(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    register(admin, receiver.url)
    receiver.gate = threading.Event()
    create_issue(ctx)
    results: list[dict[str, int]] = []
    worker = threading.Thread(target=lambda: results.append(deliver_due(ctx)))
    worker.start()
    try:
        assert receiver.arrived.wait(timeout=10)
        # While the receiver stalls, another write use case commits at once.
        done = threading.Event()
        writer = threading.Thread(target=lambda: (create_issue(ctx, title="other"), done.set()))
        writer.start()
        assert done.wait(timeout=5), "the delivery worker held a database lock during HTTP"
        writer.join()
    finally:
        receiver.gate.set()
        worker.join(timeout=10)
    assert results[0]["delivered"] == 1


def test_concurrent_workers_send_each_delivery_once(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    register(admin, receiver.url)
    for i in range(20):
        create_issue(ctx, title=f"issue {i}")
    barrier = threading.Barrier(3)
    summaries: list[dict[str, int]] = []

    def work() -> None:
        barrier.wait()
        summaries.append(deliver_due(ctx, limit=7))

    workers = [threading.Thread(target=work) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=30)
    sent = [r.headers["x-issue-platform-delivery"] for r in receiver.requests]
    assert len(sent) == len(set(sent))
    assert sum(s["claimed"] for s in summaries) == len(sent)
    while deliver_due(ctx)["claimed"]:
        pass
    sent = [r.headers["x-issue-platform-delivery"] for r in receiver.requests]
    assert sorted(sent) == sorted(d.id for d in deliveries(ctx))
    assert all(d.state == "delivered" for d in deliveries(ctx))


def test_deliveries_are_counted_in_metrics(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    def count(result: str) -> float:
        value = REGISTRY.get_sample_value(
            "issue_platform_webhook_deliveries_total", {"result": result}
        )
        return value or 0.0

    register(admin, receiver.url)
    before_ok, before_retry = count("delivered"), count("retry")
    receiver.statuses = [500]
    create_issue(ctx)
    deliver_due(ctx)
    assert count("retry") == before_retry + 1
    assert count("delivered") == before_ok


def test_webhook_delivery_is_a_scheduled_job(app: FastAPI) -> None:
    from app.jobs.schedule import job_named

    job = job_named("webhook_delivery")
    assert job.interval(ctx_of(app)) == ctx_of(app).settings.webhook_poll_seconds
    assert Settings().webhook_poll_seconds == 1.0


# --- the outbox and the post-process gate ----------------------------------------------------


def test_only_subscribed_webhooks_of_the_issues_project_get_a_delivery(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    with ctx.db.write() as session:
        session.add(Project(id=2, organization_id=1, slug="other", name="Other"))
        session.commit()
    created = register(admin, receiver.url, ["issue.created"])
    resolved_only = register(admin, receiver.url, ["issue.resolved"])
    register(admin, receiver.url, ALL_EVENTS, project=2)

    issue_id, queued = create_issue(ctx)
    assert queued == 1
    assert notify(ctx, issue_id, "issue.resolved") == 1
    assert notify(ctx, issue_id, "issue.escalating") == 0

    rows = deliveries(ctx)
    assert sorted((r.webhook_id, r.event) for r in rows) == [
        (created, "issue.created"),
        (resolved_only, "issue.resolved"),
    ]
    assert all(r.state == "pending" and r.next_attempt_at == ctx.now() for r in rows)


def test_outbox_rows_roll_back_with_the_change(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    register(admin, receiver.url)
    issue_id, _ = create_issue(ctx)
    with ctx.db.write() as session:
        group = session.get(Group, issue_id)
        assert group is not None
        assert enqueue(session, ctx, group, "issue.resolved", now=ctx.now()) == 1
        session.rollback()
    assert [r.event for r in deliveries(ctx)] == ["issue.created"]


def test_unknown_event_is_a_programming_error(ctx: AppContext) -> None:
    issue_id, _ = create_issue(ctx)
    with pytest.raises(ValueError, match="unknown notification event"):
        notify(ctx, issue_id, "issue.deleted")


def test_unreleased_type_with_post_process_off_queues_nothing(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    register(admin, receiver.url)
    issue_id, queued = create_issue(ctx, type_id=UNRELEASED_TYPE)
    assert queued == 0
    assert notify(ctx, issue_id, "issue.resolved") == 0
    assert deliveries(ctx) == []
    assert deliver_due(ctx)["claimed"] == 0
    assert receiver.requests == []


def test_issue_created_while_off_never_sends_created_after_flag_turns_on(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    register(admin, receiver.url)
    issue_id, queued = create_issue(ctx, type_id=UNRELEASED_TYPE)
    assert queued == 0

    set_post_process(ctx, "ga")

    assert notify(ctx, issue_id, "issue.created") == 0
    assert notify(ctx, issue_id, "issue.resolved") == 1
    _, queued_new = create_issue(ctx, type_id=UNRELEASED_TYPE, title="after")
    assert queued_new == 1
    deliver_due(ctx)
    assert sorted(r.headers["x-issue-platform-event"] for r in receiver.requests) == [
        "issue.created",
        "issue.resolved",
    ]


def test_post_process_flag_follows_its_stage_and_organizations(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    register(admin, receiver.url)
    set_post_process(ctx, "la", [99])
    assert create_issue(ctx, type_id=UNRELEASED_TYPE)[1] == 0
    set_post_process(ctx, "la", [1])
    assert create_issue(ctx, type_id=UNRELEASED_TYPE)[1] == 1
    set_post_process(ctx, "ea")
    assert create_issue(ctx, type_id=UNRELEASED_TYPE)[1] == 0
    with ctx.db.write() as session:
        org = session.get(Organization, 1)
        assert org is not None
        org.early_adopter = True
        session.commit()
    assert create_issue(ctx, type_id=UNRELEASED_TYPE)[1] == 1


# --- admin API -------------------------------------------------------------------------------


def test_register_list_and_delete_a_webhook(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    r = admin.post(
        "/admin/projects/1/webhooks",
        json={
            "url": receiver.url,
            "secret": SECRET,
            "events": ["issue.resolved", "issue.created", "issue.resolved"],
        },
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["project_id"] == 1
    assert created["url"] == receiver.url
    assert created["events"] == ["issue.resolved", "issue.created"]
    assert "secret" not in created
    assert created["created_at"] == "2026-11-02T12:00:00Z"

    listed = admin.get("/admin/projects/1/webhooks")
    assert listed.status_code == 200
    assert listed.json() == [created]

    create_issue(ctx)
    assert len(deliveries(ctx)) == 1
    assert admin.delete(f"/admin/webhooks/{created['id']}").status_code == 204
    assert admin.get("/admin/projects/1/webhooks").json() == []
    assert deliveries(ctx) == []  # pending deliveries go with it
    assert_error(admin.delete(f"/admin/webhooks/{created['id']}"), 404, "webhook_not_found")


@pytest.mark.parametrize(
    "payload",
    [
        {"url": "ftp://example.com/hook", "secret": SECRET, "events": ["issue.created"]},
        {"url": "example.com/hook", "secret": SECRET, "events": ["issue.created"]},
        {"url": "https://example.com/hook", "secret": "", "events": ["issue.created"]},
        {"url": "https://example.com/hook", "events": ["issue.created"]},
        {"url": "https://example.com/hook", "secret": SECRET, "events": []},
        {"url": "https://example.com/hook", "secret": SECRET},
        {"url": "https://example.com/hook", "secret": SECRET, "events": ["issue.deleted"]},
    ],
)
def test_invalid_webhook_is_refused(admin: TestClient, payload: dict[str, Any]) -> None:
    assert_error(admin.post("/admin/projects/1/webhooks", json=payload), 422, "invalid_payload")


def test_private_receiver_is_refused_unless_allowed(app: FastAPI, admin: TestClient) -> None:
    app.state.ctx.settings.webhook_allow_private_networks = False
    body = {"secret": SECRET, "events": ["issue.created"]}
    for url in ("http://localhost:9000/", "http://127.0.0.1/", "http://[::1]/", "http://10.0.0.7"):
        r = admin.post("/admin/projects/1/webhooks", json={"url": url, **body})
        assert_error(r, 422, "webhook_url_not_allowed")
    ok = admin.post("/admin/projects/1/webhooks", json={"url": "https://example.com/", **body})
    assert ok.status_code == 201
    app.state.ctx.settings.webhook_allow_private_networks = True
    r = admin.post("/admin/projects/1/webhooks", json={"url": "http://127.0.0.1/", **body})
    assert r.status_code == 201


def test_unknown_project_and_webhook_are_404(admin: TestClient) -> None:
    body = {"url": "https://example.com/", "secret": SECRET, "events": ["issue.created"]}
    assert_error(admin.post("/admin/projects/999/webhooks", json=body), 404, "project_not_found")
    assert_error(admin.get("/admin/projects/999/webhooks"), 404, "project_not_found")
    assert_error(admin.delete("/admin/webhooks/999"), 404, "webhook_not_found")
    assert_error(admin.get("/admin/webhooks/999/deliveries"), 404, "webhook_not_found")


def test_webhook_admin_needs_the_admin_token(client: TestClient) -> None:
    assert_error(client.get("/admin/projects/1/webhooks"), 401, "unauthenticated")
    r = client.get("/admin/projects/1/webhooks", headers={"Authorization": "Bearer nope"})
    assert_error(r, 401, "unauthenticated")


def test_delivery_log_is_newest_first_and_paged(
    ctx: AppContext, admin: TestClient, receiver: Receiver, clock: FakeClock
) -> None:
    hook = register(admin, receiver.url)
    ids = []
    for i in range(3):
        ids.append(create_issue(ctx, title=f"issue {i}")[0])
        clock.advance(minutes=1)
    same_time = [notify(ctx, ids[0], "issue.resolved"), notify(ctx, ids[1], "issue.resolved")]
    assert same_time == [1, 1]

    seen: list[dict[str, Any]] = []
    page = log_of(admin, hook, limit=2)
    while True:
        assert len(page["data"]) <= 2
        seen.extend(page["data"])
        if page["next_cursor"] is None:
            break
        page = log_of(admin, hook, limit=2, cursor=page["next_cursor"])
    assert len(seen) == 5
    assert len({d["id"] for d in seen}) == 5
    stamps = [datetime.fromisoformat(d["created_at"]) for d in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert [d["issue_id"] for d in seen[2:]] == [ids[2], ids[1], ids[0]]

    r = admin.get(f"/admin/webhooks/{hook}/deliveries", params={"cursor": "%%%"})
    assert_error(r, 422, "invalid_payload")
    r = admin.get(f"/admin/webhooks/{hook}/deliveries", params={"limit": 0})
    assert_error(r, 422, "invalid_payload")
    r = admin.get(f"/admin/webhooks/{hook}/deliveries", params={"limit": 101})
    assert_error(r, 422, "invalid_payload")


# --- end to end through ingest ---------------------------------------------------------------


def post_occurrence(admin: TestClient, **overrides: Any) -> dict[str, Any]:
    """POST one occurrence; returns the 202 answer."""
    r = admin.post("/occurrences", json=occurrence(**overrides))
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


def resolve_by_hand(ctx: AppContext, issue_id: int) -> None:
    """Resolve an issue directly in the database (no notification)."""
    with ctx.db.write() as session:
        group = session.get(Group, issue_id)
        assert group is not None
        group.status, group.substatus = 1, None
        session.commit()


def test_ingested_issue_notifies_created_and_regressed(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    register(admin, receiver.url)
    created = post_occurrence(admin)
    assert created["outcome"] == "created"
    deliver_due(ctx)
    [request] = receiver.requests
    body = request.json()
    assert body["event"] == "issue.created"
    assert verify(SECRET, request.body, request.headers["x-issue-platform-signature"])
    shown = admin.get(f"/issues/{created['issue_id']}")
    assert shown.status_code == 200
    assert body["issue"] == shown.json()
    assert body["issue"]["latest_occurrence"]["id"] == created["occurrence_id"]

    assert post_occurrence(admin)["outcome"] == "grouped"
    resolve_by_hand(ctx, created["issue_id"])
    assert post_occurrence(admin)["outcome"] == "regressed"
    deliver_due(ctx)
    assert [r.json()["event"] for r in receiver.requests] == ["issue.created", "issue.regressed"]
    regressed = receiver.requests[1].json()["issue"]
    assert regressed["substatus"] == "regressed"
    assert regressed["times_seen"] == 3  # the issue as the regression left it


def test_ingested_issue_of_type_without_post_process_never_notifies_created(
    ctx: AppContext, admin: TestClient, receiver: Receiver
) -> None:
    register(admin, receiver.url)
    with ctx.db.write() as session:
        session.add(RolloutFlag(type_id=UNRELEASED_TYPE, kind="ingest", stage="ga"))
        session.commit()
    created = post_occurrence(admin, type=UNRELEASED_TYPE, fingerprint=["io"])
    assert created["outcome"] == "created"
    assert deliveries(ctx) == []

    set_post_process(ctx, "ga")
    assert post_occurrence(admin, type=UNRELEASED_TYPE, fingerprint=["io"])["outcome"] == "grouped"
    resolve_by_hand(ctx, created["issue_id"])
    regressed = post_occurrence(admin, type=UNRELEASED_TYPE, fingerprint=["io"])
    assert regressed["outcome"] == "regressed"
    deliver_due(ctx)
    assert [r.json()["event"] for r in receiver.requests] == ["issue.regressed"]


# --- targets judged again at send time, the connection pinned to the judged address ----------

PUBLIC = ipaddress.ip_address("93.184.215.14")
LOOPBACK = ipaddress.ip_address("127.0.0.1")


def port_of(receiver: Receiver) -> int:
    port = urlsplit(receiver.url).port
    assert port is not None
    return port


def test_name_rebound_to_loopback_after_registration_is_not_delivered(
    ctx: AppContext, admin: TestClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings.webhook_allow_private_networks = False
    answers = iter([[PUBLIC], [LOOPBACK]])  # registration, then the attempt
    monkeypatch.setattr(egress, "resolve", lambda host, port: next(answers))
    hook = register(admin, f"http://rebind.example.com:{port_of(receiver)}/hook")
    create_issue(ctx)

    assert deliver_due(ctx) == {"claimed": 1, "delivered": 0, "retry": 0, "failed": 1}

    assert receiver.requests == []
    [entry] = log_of(admin, hook)["data"]
    assert entry["state"] == "failed"
    assert entry["last_status_code"] is None
    assert entry["last_error"] == REFUSED_TARGET
    assert str(port_of(receiver)) not in entry["last_error"]


def test_delivery_connects_to_the_judged_address_and_keeps_the_name(
    ctx: AppContext, admin: TestClient, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx.settings.webhook_allow_private_networks = False
    ctx.settings.webhook_allowed_networks = (ipaddress.ip_network("127.0.0.0/8"),)
    monkeypatch.setattr(egress, "resolve", lambda host, port: [LOOPBACK])
    looked_up: list[object] = []
    system_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: object, *args: Any, **kwargs: Any) -> Any:
        looked_up.append(host)
        return system_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    register(admin, f"http://hooks.example.com:{port_of(receiver)}/hook")
    create_issue(ctx)

    assert deliver_due(ctx)["delivered"] == 1

    [request] = receiver.requests
    assert request.headers["host"] == f"hooks.example.com:{port_of(receiver)}"
    # The HTTP client never resolved the name itself: it connected to the judged address.
    assert "hooks.example.com" not in looked_up


def test_localhost_receiver_is_judged_again_at_every_attempt(
    ctx: AppContext, admin: TestClient, receiver: Receiver, clock: FakeClock
) -> None:
    ctx.settings.webhook_allow_private_networks = False
    loopback = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
    ctx.settings.webhook_allowed_networks = loopback
    hook = register(admin, receiver.url.replace("127.0.0.1", "localhost"))
    issue_id, _ = create_issue(ctx)
    assert deliver_due(ctx)["delivered"] == 1

    ctx.settings.webhook_allowed_networks = ()
    clock.advance(seconds=1)
    notify(ctx, issue_id, "issue.resolved")
    assert deliver_due(ctx)["failed"] == 1

    assert len(receiver.requests) == 1
    latest = log_of(admin, hook)["data"][0]
    assert (latest["event"], latest["last_error"]) == ("issue.resolved", REFUSED_TARGET)


@contextmanager
def service_logging(settings: Settings) -> Iterator[None]:
    """The process's logging set up as `serve` and `jobs` do, at DEBUG; restored afterwards."""
    root = logging.getLogger()
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")
    levels = {name: logging.getLogger(name).level for name in names}
    root_level, root_handlers = root.level, root.handlers[:]
    root.handlers.clear()
    try:
        configure_logging(settings.model_copy(update={"log_level": "DEBUG"}))
        yield
    finally:
        root.handlers[:] = root_handlers
        root.setLevel(root_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_delivery_logs_never_show_the_urls_path_token(
    ctx: AppContext,
    admin: TestClient,
    receiver: Receiver,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = "XyZ0sl4ckP4thT0ken9"  # noqa: S105 - as in https://hooks.slack.com/services/T/B/<token>
    register(admin, f"{receiver.url}/services/T000/B000/{token}")
    create_issue(ctx)
    with service_logging(settings):
        assert deliver_due(ctx)["delivered"] == 1
        logging.getLogger("tests.webhooks").debug("delivery done")

    err = capsys.readouterr().err
    assert "delivery done" in err  # the logs of the delivery were captured
    assert receiver.requests[0].path.endswith(token)
    assert token not in err
