"""The producer example of docs/kafka.md runs as written and does what the page says.

The three ``python`` blocks of its "The producer" section are executed: the messages, then the
Kafka block against the real broker and consumer of ``tests/test_kafka.py`` (only the broker
address and topic are swapped for the test's), or the HTTP block against the app under test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import app.producer
from tests.conftest import ADMIN_TOKEN
from tests.test_kafka import (  # noqa: F401  (fixtures used by name)
    RunningConsumer,
    broker,
    ctx,
    start_consumer,
    topic,
    wait_for,
)

DOC = Path(__file__).resolve().parent.parent / "docs" / "kafka.md"
DOC_BROKER = '"localhost:9092"'
DOC_TOPIC = '"ingest-occurrences"'


def producer_blocks() -> tuple[str, str, str]:
    """The messages, the Kafka block and the HTTP block, in the page's order."""
    section = DOC.read_text().split("## The producer", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 3, f"expected 3 python blocks in 'The producer', found {len(blocks)}"
    messages, kafka, http = blocks
    assert "KafkaTransport(" in kafka
    assert "HttpTransport(" in http
    return messages, kafka, http


def test_kafka_example_opens_the_issue_and_resolves_it(
    broker: str,  # noqa: F811
    topic: str,  # noqa: F811
    admin: TestClient,
    start_consumer: Callable[..., RunningConsumer],  # noqa: F811
) -> None:
    messages, kafka, _ = producer_blocks()
    assert DOC_BROKER in kafka
    assert DOC_TOPIC in kafka
    runnable = kafka.replace(DOC_BROKER, repr(broker)).replace(DOC_TOPIC, repr(topic))
    namespace: dict[str, Any] = {}
    exec(compile(messages + runnable, str(DOC), "exec"), namespace)  # noqa: S102

    running = start_consumer()

    def resolved() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = admin.get("/issues", params={"status": "resolved"}).json()[
            "data"
        ]
        return found

    issues = wait_for(resolved, what="the documented issue, resolved")
    wait_for(lambda: running.consumer.processed == 2, what="both messages processed")
    running.close()
    assert running.error is None
    assert running.consumer.dead_lettered == 0
    assert [(i["title"], i["type"], i["times_seen"]) for i in issues] == [
        ("Large HTTP payload", "performance_large_http_payload", 1)
    ]
    activity = admin.get(f"/issues/{issues[0]['id']}/activity").json()["data"]
    assert [row["type"] for row in activity] == ["set_resolved"]


def test_http_example_answers_what_its_comments_say(
    admin: TestClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    messages, _, http = producer_blocks()

    class ToTheTestApp(app.producer.HttpTransport):
        """The documented transport, sent to the app under test with a real token."""

        def __init__(self, base_url: str, token: str, **options: Any) -> None:
            super().__init__(base_url, ADMIN_TOKEN, client=admin, **options)

    monkeypatch.setattr(app.producer, "HttpTransport", ToTheTestApp)
    namespace: dict[str, Any] = {}
    exec(compile(messages + http, str(DOC), "exec"), namespace)  # noqa: S102

    expected = re.findall(r"^print\(.*\)\s+# (.*)$", http, re.MULTILINE)
    assert expected, "the HTTP block shows no expected output"
    assert capsys.readouterr().out.splitlines() == expected
    assert namespace["created"]["outcome"] == "created"
    issue = admin.get(f"/issues/{namespace['created']['issue_id']}").json()
    assert (issue["status"], issue["title"]) == ("resolved", "Large HTTP payload")
