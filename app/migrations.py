"""Running Alembic migrations from the service and the CLI."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from alembic import command

_PACKAGE = Path(__file__).resolve().parent
#: Where an installed wheel keeps the scripts (``setup.py`` copies ``alembic/`` there).
PACKAGED_SCRIPTS = _PACKAGE / "_migrations"
#: Where a checkout keeps them (and ``alembic.ini``, for developers running ``alembic``).
CHECKOUT_SCRIPTS = _PACKAGE.parent / "alembic"


def script_location() -> Path:
    """The folder of the migration scripts: the installed package's, else the checkout's."""
    if (PACKAGED_SCRIPTS / "env.py").is_file():
        return PACKAGED_SCRIPTS
    if (CHECKOUT_SCRIPTS / "env.py").is_file():
        return CHECKOUT_SCRIPTS
    raise RuntimeError(
        f"migration scripts not found in {PACKAGED_SCRIPTS} or {CHECKOUT_SCRIPTS}: "
        "reinstall the package (pip install --force-reinstall issue-platform)"
    )


def alembic_config(url: str) -> Config:
    """An Alembic config pointing at this project's migrations and the given database."""
    # No ini file: the service needs only the script folder and the URL, and the installed
    # package has no alembic.ini (which is for developers' `alembic revision` in a checkout).
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location()))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    return cfg


@lru_cache
def head_revision() -> str | None:
    """The newest revision of the migration scripts."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Revert migrations down to ``revision``."""
    command.downgrade(alembic_config(url), revision)
