"""The organization and project every empty database starts with."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.config import get_settings
from app.db import Database
from app.models import Organization, Project


def ensure_defaults(db: Database) -> None:
    """Create organization 1 and project 1 (slug ``default``) when no organization exists."""
    with db.write() as session:
        if session.scalars(select(Organization.id).limit(1)).first() is not None:
            return
        try:
            # The flush waits for a concurrent seeder and then fails on the same key: it belongs
            # inside the ``try`` too, or two processes starting together crash one of them.
            session.add(Organization(id=1, slug="default", name="Default"))
            session.flush()
            session.add(
                Project(
                    id=1,
                    organization_id=1,
                    slug="default",
                    name="Default",
                    retention_days=get_settings().default_retention_days,
                )
            )
            session.commit()
        except IntegrityError:  # another process seeded first
            session.rollback()
