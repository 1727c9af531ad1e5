"""Periodic jobs: auto-resolve, ongoing transitions, forecasts, webhook delivery."""
