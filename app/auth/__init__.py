"""Authentication (admin token, API keys) and tenancy checks."""
