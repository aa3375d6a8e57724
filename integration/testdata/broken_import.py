"""An app whose import fails, for boot-failure tests."""
import no_such_module_anywhere  # noqa: F401


def app(environ, start_response):
    start_response("200 OK", [])
    return [b""]
