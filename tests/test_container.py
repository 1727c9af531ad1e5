"""The container files: Dockerfile, compose.yaml and .dockerignore agree with each other and the app.

No Docker engine runs here; `make image-test` builds and runs the image itself.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def _dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [
        " ".join(part.strip() for part in chunk.split("\\\n")).strip()
        for chunk in re.split(r"(?<!\\)\n", "\n".join(lines))
        if chunk.strip()
    ]


def _stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current = "(global)"
    for instruction in _dockerfile():
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)$", instruction, re.IGNORECASE)
        if match:
            current = match.group(1)
        stages.setdefault(current, []).append(instruction)
    return stages


def _runtime() -> list[str]:
    return _stages()["runtime"]


def _one(instructions: list[str], keyword: str) -> str:
    found = [i for i in instructions if i.split(None, 1)[0].upper() == keyword]
    assert len(found) == 1, f"{keyword}: {found}"
    return found[0].split(None, 1)[1]


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def _setting_names(environment: dict[str, str]) -> set[str]:
    return {key for key in environment if key.startswith("ISSUE_PLATFORM_")}


def _env_key(field: str) -> str:
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def test_base_image_is_an_argument_defaulting_to_official_python_slim() -> None:
    global_args = [i for i in _stages()["(global)"] if i.upper().startswith("ARG ")]
    assert global_args == ["ARG BASE=python:3.12-slim"]
    froms = [i for i in _dockerfile() if i.upper().startswith("FROM ")]
    assert froms == ["FROM ${BASE} AS build", "FROM ${BASE} AS runtime"]


def test_runtime_stage_installs_only_from_the_build_stage_wheelhouse() -> None:
    runtime = _runtime()
    runs = [i for i in runtime if i.upper().startswith("RUN ")]
    installs = [i for i in runs if "pip install" in i]
    assert len(installs) == 1
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in installs[0]
    assert "--no-index --find-links /wheels" in installs[0]
    # Nothing of the source tree reaches the runtime image.
    copies = [i for i in runtime if i.upper().startswith(("COPY ", "ADD "))]
    assert copies == ["COPY --from=build /wheels.sha256 /opt/issue-platform.wheels.sha256"]


def test_build_stage_goes_offline_when_given_a_wheelhouse() -> None:
    build = " ".join(_stages()["build"])
    assert "ARG WHEELHOUSE=" in build
    assert '--no-index --find-links "/src/${WHEELHOUSE}"' in build
    assert "pip wheel" in build


def test_runtime_runs_as_a_non_root_user_with_a_data_volume() -> None:
    runtime = _runtime()
    user = _one(runtime, "USER")
    assert user not in {"root", "0"}
    assert any("useradd --uid 10001 --user-group" in i and user in i for i in runtime)
    assert json.loads(_one(runtime, "VOLUME")) == ["/data"]
    env = shlex.split(_one(runtime, "ENV"))
    assert f"{_env_key('data_dir')}=/data" in env
    assert _one(runtime, "EXPOSE") == "8000"


def test_healthcheck_asks_readyz_on_the_served_port() -> None:
    runtime = _runtime()
    health = _one(runtime, "HEALTHCHECK")
    probe = json.loads(health.split(" CMD ", 1)[1])
    assert probe[:2] == ["python3", "-c"]
    assert "urllib.request.urlopen('http://127.0.0.1:8000/readyz'" in probe[2]
    cmd = json.loads(_one(runtime, "CMD"))
    assert cmd == ["issue-platform", "serve", "--host", "0.0.0.0", "--port", "8000"]


def test_compose_serves_the_image_command_on_postgres_once_it_is_healthy() -> None:
    services = _compose()["services"]
    assert set(services) == {"issue-platform", "postgres", "kafka", "kafka-topics", "consumer"}
    app = services["issue-platform"]
    assert app["command"] == json.loads(_one(_runtime(), "CMD"))
    assert app["build"]["context"] == "."
    assert app["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "data:/data" in app["volumes"]
    assert "profiles" not in app

    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    url = app["environment"][_env_key("database_url")]
    pg_env = postgres["environment"]
    assert url == (
        f"postgresql+psycopg://{pg_env['POSTGRES_USER']}:{pg_env['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{pg_env['POSTGRES_DB']}"
    )


def test_kafka_profile_adds_the_broker_and_the_consumer() -> None:
    services = _compose()["services"]
    kafka_only = {name for name, spec in services.items() if "kafka" in spec.get("profiles", [])}
    assert kafka_only == {"kafka", "kafka-topics", "consumer"}

    consumer = services["consumer"]
    assert consumer["image"] == services["issue-platform"]["image"]
    assert consumer["build"]["args"]["EXTRAS"] == "kafka"
    command = consumer["command"]
    assert command[:2] == ["issue-platform", "consume"]
    servers = command[command.index("--bootstrap-servers") + 1]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT://{servers}" in advertised.split(",")
    assert consumer["healthcheck"] == {"disable": True}
    assert consumer["depends_on"]["issue-platform"] == {"condition": "service_healthy"}
    assert consumer["depends_on"]["kafka-topics"] == {"condition": "service_completed_successfully"}
    topics = " ".join(services["kafka-topics"]["command"])
    assert "ingest-occurrences ingest-occurrences-dlq" in topics


def test_compose_sets_only_real_settings() -> None:
    known = {_env_key(name) for name in Settings.model_fields}
    for name, spec in _compose()["services"].items():
        unknown = _setting_names(spec.get("environment", {})) - known
        assert not unknown, f"{name}: {unknown}"


def test_compose_declares_every_named_volume() -> None:
    compose = _compose()
    used = {
        volume.split(":", 1)[0]
        for spec in compose["services"].values()
        for volume in spec.get("volumes", [])
    }
    assert used == set(compose["volumes"])


@pytest.mark.parametrize("path", ["pyproject.toml", "setup.py", "README.md", "app", "alembic"])
def test_dockerignore_keeps_what_building_the_wheel_needs(path: str) -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert (ROOT / path).exists()
    assert not [p for p in patterns if fnmatch.fnmatch(path, p)]


def test_dockerignore_leaves_out_local_state() -> None:
    patterns = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "data", "tests"} <= patterns
