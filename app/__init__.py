"""Issue Platform: a self-hostable service that turns detector findings into tracked issues."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("issue-platform")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"
