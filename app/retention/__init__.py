"""Retention: what expired (rules) and the bounded cleanup pass that deletes it (service)."""
