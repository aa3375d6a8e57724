"""Fails while being imported, as apps with a bad setting do."""

SETTING = None
raise RuntimeError("database URL missing")  # the traceback must show this line
