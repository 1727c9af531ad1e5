"""The systemd units under deploy/ start real commands with real options, and systemd accepts them."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings

ROOT = Path(__file__).resolve().parent.parent
UNITS_DIR = ROOT / "deploy" / "systemd"
UNITS = sorted(UNITS_DIR.glob("*.service"))
ENV_EXAMPLE = UNITS_DIR / "env.example"
INSTALLED_BINARY = "/opt/issue-platform/.venv/bin/issue-platform"
ENV_FILE = "/etc/issue-platform/env"


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections → keys → values of a unit file (keys may repeat; ``\\`` continues a line)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if not pending and (not raw.strip() or raw.lstrip().startswith(("#", ";"))):
            continue
        if raw.endswith("\\"):
            pending += raw[:-1] + " "
            continue
        logical.append(pending + raw)
        pending = ""
    assert not pending, f"{path.name}: the last line ends with a continuation"
    for line in logical:
        header = re.fullmatch(r"\[([A-Za-z]+)\]", line.strip())
        if header:
            current = sections.setdefault(header[1], {})
            continue
        assert current is not None, f"{path.name}: {line!r} is outside any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not key=value"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _id(path: Path) -> str:
    return path.name


def _commands() -> set[str]:
    """The names of the CLI's commands."""
    return {
        info.name or (info.callback.__name__ if info.callback else "")
        for info in cli.registered_commands
    }


def test_the_units_are_shipped() -> None:
    assert {p.name for p in UNITS} == {
        "issue-platform@.service",
        "issue-platform-consume@.service",
        "issue-platform-migrate.service",
    }


def cli_help(command: str) -> str:
    """``issue-platform <command> --help`` as a user sees it."""
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


def option_types(help_text: str) -> dict[str, str]:
    """Option name → the value type the help shows (``int``, ``str``, ``int range`` …)."""
    return dict(re.findall(r"(?<![\w-])(--[a-z][\w-]*|-[A-Za-z])\s+<([^>]+)>", help_text))


@pytest.mark.parametrize("path", UNITS, ids=_id)
def test_exec_start_runs_a_real_command_with_real_options(path: Path) -> None:
    service = parse_unit(path)["Service"]
    (exec_start,) = service["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[0] == INSTALLED_BINARY
    command, args = argv[1], argv[2:]
    assert command in _commands(), f"{path.name}: `issue-platform` has no command {command!r}"
    help_text = cli_help(command)
    types = option_types(help_text)
    assert "--help" in types, "the help output is not what this test can read"
    given = args[0::2]
    for name, value in zip(given, args[1::2], strict=True):
        assert name in types, f"{path.name}: `issue-platform {command}` has no option {name}"
        if re.fullmatch(r"%[a-zA-Z]|\$\{[A-Z_]+\}", value):
            continue  # filled in by systemd: an instance name or a variable of the env file
        if types[name].startswith("int"):
            assert value.isdigit(), f"{path.name}: {name} takes an integer, not {value!r}"
    required = set(re.findall(r"\*\s+(--[a-z][\w-]*)", help_text))
    assert required <= set(given), f"{path.name}: missing required {required - set(given)}"


@pytest.mark.parametrize("path", UNITS, ids=_id)
def test_units_read_the_shared_env_file_and_run_unprivileged(path: Path) -> None:
    unit = parse_unit(path)
    service = unit["Service"]
    assert unit["Unit"]["Description"]
    assert service["EnvironmentFile"] == [ENV_FILE]
    assert service["User"] == ["issue-platform"]
    assert service["StateDirectory"] == ["issue-platform"]
    variables = set(re.findall(r"\$\{([A-Z_]+)\}", service["ExecStart"][0]))
    assert variables <= set(_env_example()), f"{path.name}: env.example lacks {variables}"
    if not path.name.endswith("-migrate.service"):
        assert unit["Install"]["WantedBy"] == ["multi-user.target"]
        assert service["Restart"] == ["on-failure"]


def _env_example() -> dict[str, str]:
    pairs = [
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return dict(pairs)


def test_env_example_sets_real_settings_and_what_the_units_use() -> None:
    env = _env_example()
    settings = {f"ISSUE_PLATFORM_{name.upper()}" for name in Settings.model_fields}
    used = {name for path in UNITS for name in re.findall(r"\$\{([A-Z_]+)\}", path.read_text())}
    unknown = {k for k in env if k not in settings and k not in used}
    assert not unknown, f"env.example sets what nothing reads: {unknown}"
    values: dict[str, Any] = {
        k.removeprefix("ISSUE_PLATFORM_").lower(): v for k, v in env.items() if k in settings
    }
    Settings(**values)


def test_deploy_docs_point_at_every_unit_file() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    for path in [*UNITS, ENV_EXAMPLE]:
        assert f"](../deploy/systemd/{path.name})" in text, (
            f"docs/deploy.md does not link {path.name}"
        )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    binary = Path(sys.executable).parent / "issue-platform"
    assert binary.exists(), "the issue-platform console script is not installed in this venv"
    copies = []
    for path in UNITS:
        # Templates are checked as an instance; the binary must exist, so the venv's stands in.
        name = path.name.replace("@.service", "@1.service")
        copy = tmp_path / name
        copy.write_text(path.read_text().replace(INSTALLED_BINARY, str(binary)))
        copies.append(str(copy))
    result = subprocess.run(  # noqa: S603
        ["systemd-analyze", "verify", *copies],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, output
    assert not output, f"systemd-analyze warns: {output}"
