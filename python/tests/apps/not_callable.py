"""``app`` exists but is not a WSGI callable."""

app = 42
