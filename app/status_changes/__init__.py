"""Status changes sent by detectors: `POST /status-changes`."""
