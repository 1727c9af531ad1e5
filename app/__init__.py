"""Issue Platform: a self-hostable service that turns detector findings into tracked issues."""
