"""An app object that raises on every attribute access (even SystemExit):
route extraction must give up quietly and the worker must still serve."""


class Hostile:
    def __getattribute__(self, name):
        raise SystemExit("no attributes for you")

    def __call__(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"still serving"]


app = Hostile()
