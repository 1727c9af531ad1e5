"""The ``issue-platform`` command line."""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from pydantic import ValidationError

from app.config import Settings, debug_requested, get_settings, settings_problems

if TYPE_CHECKING:
    from app.context import AppContext

cli = typer.Typer(
    help="Issue Platform: occurrences in, deduplicated issues out.", no_args_is_help=True
)


def _print_version(value: bool) -> None:
    if value:
        from app import __version__

        typer.echo(f"issue-platform {__version__}")
        raise typer.Exit()


@cli.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Issue Platform: occurrences in, deduplicated issues out."""


class StartupError(Exception):
    """A reason not to start, told in two lines: what is wrong and how to fix it."""

    def __init__(self, problem: str, fix: str, *, exit_code: int = 2) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix
        self.exit_code = exit_code


def _ensure_admin_token() -> None:
    settings = get_settings()
    if settings.admin_token:
        return
    path: Path = settings.admin_token_path
    if path.is_file() and path.read_text().strip():
        typer.echo(f"admin token: stored in {path.resolve()}", err=True)
        return
    from app.auth.principal import new_token

    token = new_token("ipa_")
    try:
        path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
        with os.fdopen(fd, "w") as fh:
            fh.write(token + "\n")
        os.chmod(path, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise StartupError(
            f"cannot store the generated admin token in {path}: {exc.strerror}",
            "make ISSUE_PLATFORM_DATA_DIR writable, or set ISSUE_PLATFORM_ADMIN_TOKEN",
        ) from exc
    typer.echo(f"admin token generated and stored in {path.resolve()} (mode 600)", err=True)


# The data directory holds every tenant's data and webhook secrets (the SQLite file) and the
# admin token: only the service's user may enter it or read its files. The modes are given
# where each is created (mkdir, os.open, and the database file before SQLite opens it, see
# app.sqlite_maintenance.create_private_file), not through the process's umask, which would
# change it for everything else.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600
GROUP_OTHER_BITS = 0o077


def _ensure_data_dir(settings: Settings) -> None:
    """Create the data directory (mode 700) when the default SQLite file lives there; warn
    about loose modes of an existing one."""
    if not settings.database_url:
        try:
            settings.data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupError(
                f"cannot create the data directory {settings.data_dir}: {exc.strerror}",
                "make it writable, or set ISSUE_PLATFORM_DATA_DIR (or ISSUE_PLATFORM_DATABASE_URL)",
            ) from exc
    _warn_about_loose_modes(settings)


def _loose_mode(path: Path) -> int | None:
    """The permission bits of ``path`` when group or others have any; else None."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None
    return mode if mode & GROUP_OTHER_BITS else None


def _warn_about_loose_modes(settings: Settings) -> None:
    """One line per private path that group or others can reach (changed by nobody but you).

    Not corrected here: a looser mode may be deliberate (a backup user's group), and changing
    the modes of someone's files behind their back is worse than saying so.
    """
    if not settings.database_url:
        folder = settings.data_dir
        mode = _loose_mode(folder)
        if mode is not None:
            typer.echo(
                f"warning: the data directory {folder} is open to group/others (mode {mode:o}); "
                f"it holds the database and the admin token: chmod 700 {folder}",
                err=True,
            )
        database = folder / "issue_platform.db"
        mode = _loose_mode(database)
        if mode is not None:
            typer.echo(
                f"warning: the database file {database} is readable by group/others "
                f"(mode {mode:o}): chmod 600 {database} (and its -wal and -shm files)",
                err=True,
            )
    if not settings.admin_token:
        token = settings.admin_token_path
        mode = _loose_mode(token)
        if mode is not None:
            typer.echo(
                f"warning: the admin token file {token} is readable by group/others "
                f"(mode {mode:o}): chmod 600 {token}",
                err=True,
            )


def _check_port(host: str, port: int) -> None:
    """Fail now, with the port's name, if uvicorn could not listen there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # As uvicorn binds: a port left in TIME_WAIT by a stopped server is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartupError(
                    f"port {port} on {host} is already in use",
                    "stop the process listening there, or choose another port with --port",
                    exit_code=1,
                ) from exc
            if exc.errno == errno.EACCES:
                raise StartupError(
                    f"not allowed to listen on port {port} on {host}",
                    "choose a port above 1023 with --port (or grant CAP_NET_BIND_SERVICE)",
                    exit_code=1,
                ) from exc
            raise StartupError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                "check --host and --port",
                exit_code=1,
            ) from exc


def _load_plugins() -> None:
    """Import the issue type plugins and set up the registry now, so a conflict stops the start
    with its names."""
    from app.issue_types.builtins import create_registry
    from app.issue_types.registry import DuplicateIssueType
    from app.issue_types.service import load_plugins

    try:
        load_plugins()
        create_registry()
    except DuplicateIssueType as exc:
        raise StartupError(
            f"issue type plugin conflict: {exc}",
            "uninstall the conflicting plugin, or give its type a type_id and slug of its own",
        ) from exc


def _database_error(url: str, exc: Exception) -> StartupError:
    from sqlalchemy.engine import make_url

    from app.system.startup import short_reason

    where = make_url(url).render_as_string(hide_password=True)
    return StartupError(
        f"database {where} not usable: {short_reason(exc)}",
        "start the database, or fix ISSUE_PLATFORM_DATABASE_URL",
        exit_code=1,
    )


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the API (and run the periodic jobs); pending migrations run in the background.

    The process starts even when the database is down: /healthz answers 200, /readyz and the
    requests that need the database 503 until the database answers and its schema is at head.

    SIGTERM or SIGINT: stop accepting connections, finish in-flight requests, stop the ingest
    writer, the job loops and webhook deliveries, then exit 0.
    """
    import signal

    import uvicorn

    from app.logs import log_config

    settings = get_settings()
    _check_port(host, port)
    _load_plugins()
    _ensure_data_dir(settings)
    _ensure_admin_token()
    typer.echo(f"serving on http://{host}:{port} (docs at /docs)", err=True)
    # uvicorn handles the signal (graceful shutdown), then re-raises it once it has restored the
    # previous handler; these handlers turn that second delivery into a normal exit with code 0.
    stopped: list[int] = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: stopped.append(signum))
    uvicorn.run(
        "app.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_config=log_config(settings),
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=False,
        # uvicorn answers 503 once its count of open connections (this one included) reaches
        # the limit: so MAX_CONNECTIONS connections are served and the next one refused.
        limit_concurrency=settings.max_connections + 1,
    )
    if stopped:
        typer.echo(f"stopped on signal {stopped[0]}", err=True)


@cli.command()
def migrate() -> None:
    """Apply pending database migrations (and create the default organization and project)."""
    from app.db import Database, create_db_engine
    from app.system.startup import migrate_database

    settings = get_settings()
    _ensure_data_dir(settings)
    url = settings.resolved_database_url
    db = Database(create_db_engine(url, connect_timeout=settings.db_connect_timeout_seconds))
    try:
        migrate_database(db, url)
    except Exception as exc:
        raise _database_error(url, exc) from exc
    finally:
        db.dispose()
    typer.echo("database at head", err=True)


@cli.command()
def openapi(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """Print the OpenAPI schema (the committed openapi.json is this output)."""
    from app.openapi import openapi_json

    text = openapi_json()
    if output:
        output.write_text(text)
    else:
        typer.echo(text, nl=False)


def _context() -> AppContext:
    """A context whose database is migrated and loaded (one attempt: fails when it is down)."""
    from app.main import build_context
    from app.system.startup import Startup

    settings = get_settings()
    _load_plugins()
    _ensure_data_dir(settings)
    ctx = build_context(settings)
    try:
        Startup(ctx).prepare()
    except Exception as exc:
        ctx.db.dispose()
        raise _database_error(settings.resolved_database_url, exc) from exc
    ctx.db.start_checkpointer(settings.sqlite_checkpoint_seconds)
    return ctx


@cli.command()
def jobs() -> None:
    """Run every periodic job once (auto-resolve, ongoing, forecasts, webhook delivery,
    retention cleanup)."""
    from app.jobs.runner import run_all_once
    from app.logs import configure_logging

    configure_logging(get_settings())
    ctx = _context()
    try:
        typer.echo(json.dumps(run_all_once(ctx), default=str, indent=2))
    finally:
        ctx.db.dispose()


@cli.command()
def cleanup(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Run one retention cleanup pass; print the rows deleted per table.

    Deletes occurrences, issues, logs and ids older than each project's retention_days, in
    short batches (see docs/operations.md). With several processes on PostgreSQL, only one
    pass runs at a time; the others say they skipped.
    """
    from app.logs import configure_logging
    from app.retention.service import run_pass

    configure_logging(get_settings())
    ctx = _context()
    try:
        result = run_pass(ctx, dry_run=dry_run)
    finally:
        ctx.db.dispose()
    if result.skipped:
        typer.echo("skipped: another process is running a cleanup pass")
        return
    verb = "would delete" if dry_run else "deleted"
    width = max(len(t) for t in result.deleted)
    for table, rows in result.deleted.items():
        typer.echo(f"{table:<{width}}  {rows:>12,}")
    total = sum(result.deleted.values())
    typer.echo(f"{verb} {total:,} rows in {result.seconds:.1f} s")
    if result.vacuumed_pages:
        typer.echo(f"returned {result.vacuumed_pages:,} free pages to the filesystem")


@cli.command("auto-resolve")
def auto_resolve() -> None:
    """Run one auto-resolve pass."""
    from app.jobs.schedule import job_named

    ctx = _context()
    try:
        typer.echo(json.dumps(job_named("auto_resolve").run(ctx), default=str))
    finally:
        ctx.db.dispose()


def _kafka_options(pairs: list[str]) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            # Not the argument itself: it may be a password typed without its key.
            raise typer.BadParameter("expected KEY=VALUE", param_hint="--kafka-config")
        options[name.strip()] = value.strip()
    return options


@cli.command()
def consume(
    bootstrap_servers: Annotated[
        str, typer.Option(help="Kafka brokers, host:port[,host:port...].")
    ],
    topic: Annotated[str, typer.Option(help="Topic to read.")] = "ingest-occurrences",
    group: Annotated[str, typer.Option(help="Consumer group id.")] = "issue-platform",
    dlq_topic: Annotated[
        str | None, typer.Option(help="Dead-letter topic (default: <topic>-dlq).")
    ] = None,
    max_batch_size: Annotated[
        int, typer.Option(min=1, max=10_000, help="Messages per database transaction.")
    ] = 500,
    max_batch_time_ms: Annotated[
        int, typer.Option(min=1, help="Longest wait to fill a batch, in milliseconds.")
    ] = 200,
    kafka_option: Annotated[
        list[str] | None,
        typer.Option(
            "--kafka-config",
            "-X",
            help="librdkafka setting KEY=VALUE for the consumer and the dead-letter producer "
            "(repeatable; over ISSUE_PLATFORM_KAFKA_CONFIG), e.g. security.protocol=SASL_SSL.",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve Prometheus /metrics of this process on this port.")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="Interface for --metrics-port.")] = "127.0.0.1",
) -> None:
    """Consume the ingest topic into the database (SIGTERM/SIGINT: finish the batch, leave).

    Waits for the database first (one log line per retry), migrating it when it is behind.
    """
    import importlib
    import signal
    import threading

    # Before anything touches the database: without the client there is nothing to run.
    try:
        importlib.import_module("confluent_kafka")
    except ImportError as exc:
        raise StartupError(
            "the consume command needs confluent-kafka, which is not installed",
            "pip install 'issue-platform[kafka]'",
        ) from exc

    from confluent_kafka import KafkaException

    from app.consumer.runner import ConsumerConfig, IngestConsumer
    from app.logs import configure_logging
    from app.main import build_context
    from app.system.startup import Startup

    settings = get_settings()
    configure_logging(settings)
    config = ConsumerConfig(
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        group=group,
        dlq_topic=dlq_topic,
        max_batch_size=max_batch_size,
        max_batch_time_ms=max_batch_time_ms,
        kafka_options=settings.kafka_config | _kafka_options(kafka_option or []),
    )
    _load_plugins()
    _ensure_data_dir(settings)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from app.metrics import REGISTRY

        _check_port(metrics_host, metrics_port)
        start_http_server(metrics_port, addr=metrics_host, registry=REGISTRY)
    stop = threading.Event()

    def _request_stop(signum: int, _frame: object) -> None:
        typer.echo(f"signal {signum}: finishing the current batch", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    ctx = build_context(settings)
    try:
        if not Startup(ctx).wait(stop):
            return  # stopped before the database was ready
        ctx.db.start_checkpointer(settings.sqlite_checkpoint_seconds)
        try:
            consumer = IngestConsumer(ctx, config)
        except KafkaException as exc:
            # librdkafka names the setting it refuses (a misspelt key, a value out of range).
            raise StartupError(
                f"Kafka settings refused: {exc.args[0].str()}",
                "correct ISSUE_PLATFORM_KAFKA_CONFIG or --kafka-config; see docs/kafka.md",
            ) from exc
        consumer.run(stop)
    finally:
        ctx.db.dispose()


def _fail(lines: list[str], exit_code: int, exc: BaseException) -> NoReturn:
    if debug_requested():
        traceback.print_exception(exc, file=sys.stderr)
    for line in lines:
        typer.echo(line, err=True)
    sys.exit(exit_code)


def main() -> None:
    """Console-script entry point: a start-up error is two lines on stderr, not a traceback.

    The traceback is printed too when ``ISSUE_PLATFORM_LOG_LEVEL=DEBUG``.
    """
    try:
        cli()
    except StartupError as exc:
        _fail([f"error: {exc.problem}", f"fix: {exc.fix}"], exc.exit_code, exc)
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        lines = [f"error: {line}" for line in settings_problems(exc)]
        lines.append("fix: correct the environment variable (or .env); see docs/configuration.md")
        _fail(lines, 2, exc)
