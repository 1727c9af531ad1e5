"""librdkafka settings (TLS, SASL, …) reach the consumer, its dead-letter producer and the producer.

From ``ISSUE_PLATFORM_KAFKA_CONFIG`` (a JSON object) and ``consume --kafka-config KEY=VALUE``
(alias ``-X``); real confluent-kafka clients check the keys, the Tansu broker of
tests/test_kafka.py carries a message sent and consumed with them, and no secret is logged.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings, get_settings
from app.consumer.runner import ConsumerConfig, IngestConsumer
from app.context import AppContext
from app.producer import KafkaTransport, ProduceError
from tests import processes
from tests.test_kafka import (  # noqa: F401  (fixtures)
    TEST_CLIENT_OPTIONS,
    RunningConsumer,
    broker,
    ctx,
    occurrence,
    send,
    times_seen,
    topic,
    wait_for,
)

kafka = pytest.importorskip("confluent_kafka", reason="confluent-kafka is not installed")

SECRET = "hunter2-" + uuid.uuid4().hex
MANAGED = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanism": "SCRAM-SHA-512",
    "sasl.username": "issues",
    "sasl.password": SECRET,
}
TYPO = 'No such configuration property: "sasl.pasword"'


@pytest.fixture
def kafka_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Set ISSUE_PLATFORM_KAFKA_CONFIG for the process-wide settings."""

    def set_config(value: dict[str, Any]) -> None:
        monkeypatch.setenv("ISSUE_PLATFORM_KAFKA_CONFIG", json.dumps(value))
        get_settings.cache_clear()

    yield set_config
    monkeypatch.delenv("ISSUE_PLATFORM_KAFKA_CONFIG", raising=False)
    get_settings.cache_clear()


def test_setting_is_a_json_object_of_librdkafka_values(kafka_env: Any) -> None:
    kafka_env({**MANAGED, "linger.ms": 20, "enable.idempotence": True, "ssl.ca.location": "/ca"})
    settings = get_settings()
    assert settings.kafka_config == {
        **MANAGED,
        "linger.ms": "20",
        "enable.idempotence": "true",
        "ssl.ca.location": "/ca",
    }
    assert SECRET not in repr(settings)
    assert Settings().kafka_config == settings.kafka_config
    assert Settings.model_fields["kafka_config"].default_factory() == {}  # type: ignore[call-arg,misc]


@pytest.mark.parametrize("bad", [{"sasl.password": SECRET, "x": [1]}, {"x": {"y": SECRET}}])
def test_a_malformed_setting_is_refused_without_echoing_it(
    kafka_env: Any, bad: dict[str, Any]
) -> None:
    kafka_env(bad)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "kafka_config" in str(refused.value)
    assert SECRET not in str(refused.value)


@pytest.fixture
def cli_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ISSUE_PLATFORM_DATA_DIR", str(tmp_path / "cli-data"))
    monkeypatch.setenv("ISSUE_PLATFORM_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


class Recorded:
    """Stands in for IngestConsumer: keeps the config and stops at once."""

    configs: list[ConsumerConfig] = []

    def __init__(self, context: AppContext, config: ConsumerConfig) -> None:
        self.configs.append(config)

    def run(self, stop: Any) -> None:
        return None


@pytest.mark.usefixtures("cli_env")
def test_consume_merges_the_setting_and_the_repeatable_option(
    kafka_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    kafka_env({**MANAGED, "sasl.mechanism": "PLAIN", "session.timeout.ms": 45000})
    monkeypatch.setattr("app.consumer.runner.IngestConsumer", Recorded)
    Recorded.configs.clear()
    args = ["consume", "--bootstrap-servers", "kafka:9093"]
    args += ["--kafka-config", "sasl.mechanism=SCRAM-SHA-512", "-X", "ssl.ca.location=/etc/ca.pem"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    (config,) = Recorded.configs
    assert SECRET not in repr(config)
    consumer = config.consumer_options()
    for name, value in {**MANAGED, "ssl.ca.location": "/etc/ca.pem"}.items():
        assert consumer[name] == value  # the option wins over the setting (sasl.mechanism)
    assert consumer["session.timeout.ms"] == "45000"
    producer = config.producer_options()
    assert {k: producer[k] for k in MANAGED} == MANAGED
    assert "session.timeout.ms" not in producer and "group.id" not in producer


@pytest.mark.usefixtures("cli_env")
def test_an_option_without_a_key_is_refused_without_echoing_it() -> None:
    args = ["consume", "--bootstrap-servers", "kafka:9093", "--kafka-config", SECRET]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.output
    assert SECRET not in result.output


def _run_cli(args: list[str], tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """``issue-platform ARGS`` in a subprocess, on a SQLite file under ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ISSUE_PLATFORM_")}
    env["ISSUE_PLATFORM_DATA_DIR"] = str(tmp_path / "data")
    env.update({f"ISSUE_PLATFORM_{k.upper()}": v for k, v in settings.items()})
    return subprocess.run(
        [*processes.cli(), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
def test_a_malformed_setting_stops_consume_without_echoing_it(tmp_path: Path, level: str) -> None:
    bad = json.dumps({"sasl.password": SECRET, "x": [1]})
    args = ["consume", "--bootstrap-servers", "127.0.0.1:1"]
    result = _run_cli(args, tmp_path, kafka_config=bad, log_level=level)
    assert result.returncode == 2, result.stderr
    assert "ISSUE_PLATFORM_KAFKA_CONFIG" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_a_misspelt_key_stops_consume_with_librdkafka_s_short_error(tmp_path: Path) -> None:
    args = ["consume", "--bootstrap-servers", "127.0.0.1:1", "-X", f"sasl.pasword={SECRET}"]
    result = _run_cli(args, tmp_path)
    assert result.returncode == 2, result.stderr
    assert f"error: Kafka settings refused: {TYPO}" in result.stderr
    assert "fix: correct ISSUE_PLATFORM_KAFKA_CONFIG or --kafka-config" in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_consumer_and_dead_letter_producer_pass_options_to_librdkafka(
    admin: TestClient,
    ctx: AppContext,  # noqa: F811
) -> None:
    typo = {"sasl.pasword": SECRET}
    config = ConsumerConfig(bootstrap_servers="127.0.0.1:1", kafka_options=typo)
    with pytest.raises(kafka.KafkaException, match=TYPO):
        IngestConsumer(ctx, config)
    # The dead-letter producer alone (a consumer given): it gets them too.
    with pytest.raises(kafka.KafkaException, match=TYPO) as refused:
        IngestConsumer(ctx, config, consumer=object())
    assert SECRET not in str(refused.value)
    # Valid managed-broker settings are accepted by both clients (nothing connects yet).
    managed = ConsumerConfig(bootstrap_servers="127.0.0.1:1", kafka_options=MANAGED)
    kafka.Consumer(managed.consumer_options()).close()
    kafka.Producer(managed.producer_options()).close()


def test_kafka_transport_takes_the_setting_under_its_own_config(kafka_env: Any) -> None:
    kafka_env({"sasl.pasword": SECRET})
    with pytest.raises(kafka.KafkaException, match=TYPO):
        KafkaTransport("127.0.0.1:1")
    kafka_env({"session.timeout.ms": 45000})  # a consumer's setting: left out, not refused
    KafkaTransport("127.0.0.1:1").close()  # nothing queued: nothing to deliver


def test_settings_reach_the_broker(
    broker: str,  # noqa: F811
    topic: str,  # noqa: F811
    ctx: AppContext,  # noqa: F811
    admin: TestClient,
    kafka_env: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    # Over SSL the plaintext broker never answers: the setting is in force, not dropped.
    kafka_env({"security.protocol": "SSL", "message.timeout.ms": 2000})
    tls = KafkaTransport(broker, topic=topic)
    send(tls, occurrence("never"))
    with pytest.raises(ProduceError, match="failed"):
        tls.flush(timeout=30)
    tls.close()
    # PLAINTEXT, as the broker speaks: sent through the transport, consumed with the option.
    plain = {"security.protocol": "PLAINTEXT", "sasl.username": "u", "sasl.password": SECRET}
    kafka_env(plain)
    transport = KafkaTransport(broker, topic=topic)
    send(transport, occurrence("plain"))
    transport.close()
    config = ConsumerConfig(
        bootstrap_servers=broker,
        topic=topic,
        max_batch_time_ms=100,
        kafka_options={**TEST_CLIENT_OPTIONS, **plain},
    )
    running = RunningConsumer(IngestConsumer(ctx, config))
    try:
        wait_for(lambda: times_seen(admin).get("plain") == 1, what="the occurrence ingested")
    finally:
        running.close()
    assert running.error is None
    assert "never" not in times_seen(admin)
    captured = capfd.readouterr()
    assert SECRET not in caplog.text + captured.out + captured.err
