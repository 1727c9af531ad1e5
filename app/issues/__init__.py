"""Issues (groups): the stream, reading one issue, its occurrences, activity and forecast."""
