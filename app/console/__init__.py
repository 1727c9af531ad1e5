"""The web console: HTML pages under /ui over the API's own services."""
