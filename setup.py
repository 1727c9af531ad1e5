"""Build hook: the wheel carries the Alembic migration scripts inside the ``app`` package.

The scripts live in the top-level ``alembic/`` folder, where developers run ``alembic`` from a
checkout. A top-level package named ``alembic`` must never be installed (it would shadow the
Alembic library), so the build copies the scripts to ``app/_migrations/`` in the wheel instead;
``app.migrations`` finds them there, or in ``alembic/`` when it runs from a checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithMigrations(build_py):
    """``build_py`` that also copies ``alembic/`` (scripts only) to ``app/_migrations/``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install runs from the checkout, which has alembic/ itself
        target = Path(self.build_lib) / "app" / "_migrations"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(
            ROOT / "alembic",
            target,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )


setup(cmdclass={"build_py": BuildPyWithMigrations})
