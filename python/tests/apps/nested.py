"""Found as ``nested:holder.wsgi`` (a dotted attribute path)."""


class Holder:
    def wsgi(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"nested"]


holder = Holder()
