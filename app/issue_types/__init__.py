"""Issue types and categories: built-ins, Python classes, plugins and the admin API."""
