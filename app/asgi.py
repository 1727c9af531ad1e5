"""ASGI entry point used by ``issue-platform serve`` (periodic jobs run in each process)."""

from app.main import create_app

app = create_app(start_workers=True)
