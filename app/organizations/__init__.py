"""Organizations, projects and API keys (admin API)."""
