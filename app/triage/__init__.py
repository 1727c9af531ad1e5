"""Triage by people: `PATCH /issues/{id}`, activity and forecast of an issue."""
