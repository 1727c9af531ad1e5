"""The ``issue-platform`` command line."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.config import get_settings

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


def _ensure_admin_token() -> None:
    settings = get_settings()
    if settings.admin_token:
        return
    path: Path = settings.admin_token_path
    if path.is_file() and path.read_text().strip():
        typer.echo(f"admin token: stored in {path.resolve()}", err=True)
        return
    from app.auth.principal import new_token

    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token("ipa_")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    typer.echo(f"admin token generated and stored in {path.resolve()} (mode 600)", err=True)


def _migrate() -> None:
    from app.migrations import upgrade

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.resolved_database_url)
    from app.db import Database, create_db_engine
    from app.organizations.defaults import ensure_defaults

    db = Database(create_db_engine(settings.resolved_database_url))
    try:
        ensure_defaults(db)
    finally:
        db.dispose()


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Apply pending migrations, then serve the API (and run the periodic jobs).

    SIGTERM or SIGINT: stop accepting connections, finish in-flight requests, stop the ingest
    writer, the job loops and webhook deliveries, then exit 0.
    """
    import signal

    import uvicorn

    from app.logs import log_config

    settings = get_settings()
    _migrate()
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
    )
    if stopped:
        typer.echo(f"stopped on signal {stopped[0]}", err=True)


@cli.command()
def migrate() -> None:
    """Apply pending database migrations."""
    _migrate()
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
    from app.main import build_context

    _migrate()
    settings = get_settings()
    ctx = build_context(settings)
    ctx.db.start_checkpointer(settings.sqlite_checkpoint_seconds)
    from app.issue_types.service import reload_registry

    with ctx.db.read() as session:
        reload_registry(session, ctx.registry)
    return ctx


@cli.command()
def jobs() -> None:
    """Run every periodic job once (auto-resolve, ongoing, forecasts, webhook delivery)."""
    from app.jobs.runner import run_all_once
    from app.logs import configure_logging

    configure_logging(get_settings())
    ctx = _context()
    try:
        typer.echo(json.dumps(run_all_once(ctx), default=str, indent=2))
    finally:
        ctx.db.dispose()


@cli.command("auto-resolve")
def auto_resolve() -> None:
    """Run one auto-resolve pass."""
    from app.jobs.runner import JOBS, _load_jobs

    ctx = _context()
    try:
        _load_jobs()
        job = next((j for j in JOBS if j.name == "auto_resolve"), None)
        if job is None:
            typer.echo("auto-resolve is not available in this build", err=True)
            raise typer.Exit(1)
        typer.echo(json.dumps(job.run(ctx), default=str))
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
    """Consume the ingest topic into the database (SIGTERM/SIGINT: finish the batch, leave)."""
    import signal
    import threading

    from app.consumer.runner import ConsumerConfig, IngestConsumer
    from app.logs import configure_logging

    configure_logging(get_settings())
    config = ConsumerConfig(
        bootstrap_servers=bootstrap_servers,
        topic=topic,
        group=group,
        dlq_topic=dlq_topic,
        max_batch_size=max_batch_size,
        max_batch_time_ms=max_batch_time_ms,
        kafka_options=get_settings().kafka_config | _kafka_options(kafka_option or []),
    )
    ctx = _context()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from app.metrics import REGISTRY

        start_http_server(metrics_port, addr=metrics_host, registry=REGISTRY)
    stop = threading.Event()

    def _request_stop(signum: int, _frame: object) -> None:
        typer.echo(f"signal {signum}: finishing the current batch", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    try:
        IngestConsumer(ctx, config).run(stop)
    finally:
        ctx.db.dispose()


def main() -> None:
    """Console-script entry point."""
    cli()
