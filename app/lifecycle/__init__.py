"""Issue lifecycle: transitions, escalation forecasts and the time-driven jobs."""
