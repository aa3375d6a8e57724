"""Flask apps for route extraction tests (test_routes.py): every converter,
slash rule and wrapper corral knows. Every view answers 200, so any 404
comes from routing alone."""

import os

from flask import Blueprint, Flask
from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.middleware.shared_data import SharedDataMiddleware
from werkzeug.routing import BaseConverter, Rule

HERE = os.path.dirname(os.path.abspath(__file__))


def ok(**kwargs):
    return "ok"


class HexConverter(BaseConverter):
    """A custom converter whose regex Go reads as it is."""

    regex = "[0-9a-fA-F]+"


class NotZeroConverter(BaseConverter):
    """A lookahead: Go has none, so the route is relaxed to [0-9]{2}."""

    regex = r"(?!00)\d{2}"


class AnchoredConverter(BaseConverter):
    """Anchors inside a converter: not expressible, the rule becomes a
    prefix."""

    regex = r"^v[0-9]+"


class BrokenConverter(BaseConverter):
    """Its regex cannot even be read (after Werkzeug compiled the rule)."""

    regex = "[a-z]+"

    def __getattribute__(self, name):
        if name == "regex" and object.__getattribute__(self, "armed"):
            raise RuntimeError("converter exploded")
        return object.__getattribute__(self, name)

    armed = False


def make_app():
    app = Flask(__name__, static_folder=os.path.join(HERE, "files"))
    app.url_map.converters.update(
        hex=HexConverter, notzero=NotZeroConverter, anchored=AnchoredConverter
    )
    rules = [
        "/",
        "/str/<s>",
        "/len/<string(length=3):code>",
        "/minmax/<string(minlength=2, maxlength=4):x>",
        "/long/<string(maxlength=2000):x>",
        "/int/<int:n>",
        "/signed/<int(signed=True):n>",
        "/month/<int(min=1, max=12):m>",
        "/fixed/<int(fixed_digits=4):y>",
        "/float/<float:f>",
        "/path/<path:p>",
        "/edit/<path:p>/edit",
        "/uuid/<uuid:u>",
        "/any/<any(about, 'help.me', contact):page>",
        "/hex/<hex:h>",
        "/notzero/<notzero:n>",
        "/ver/<anchored:v>/info",
        "/two/<a>-<int:b>.html",
        "/dir/",
        "/a.b+c(d)",
        "/caf\u00e9/<x>",
    ]
    for i, rule in enumerate(rules):
        app.add_url_rule(rule, "r%d" % i, ok)
    app.add_url_rule("/post-only", "post_only", ok, methods=["POST"])
    app.add_url_rule("/loose", "loose", ok, strict_slashes=False)
    app.add_url_rule("/loose-dir/", "loose_dir", ok, strict_slashes=False)
    app.add_url_rule("/sub", "sub", ok, subdomain="api")
    app.add_url_rule("/old", "old", redirect_to="/")
    app.url_map.add(Rule("/build-only", endpoint="build_only", build_only=True))
    bp = Blueprint(
        "bp", __name__, url_prefix="/bp", static_folder=os.path.join(HERE, "files")
    )
    bp.add_url_rule("/page/<int:n>", "page", ok)
    app.register_blueprint(bp)
    return app


app = make_app()


def make_api():
    api = Flask("api")
    api.add_url_rule("/", "root", ok)
    api.add_url_rule("/items/<int:n>", "item", ok)
    return api


def plain(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"plain"]


proxied = ProxyFix(make_app(), x_for=1)

inner_wrapped = make_app()
inner_wrapped.wsgi_app = ProxyFix(inner_wrapped.wsgi_app)

dispatched = DispatcherMiddleware(make_app(), {"/api": make_api(), "/legacy": plain})

only_mounts = DispatcherMiddleware(NotFound(), {"/v1": make_api()})

unknown_root = DispatcherMiddleware(plain, {"/api": make_api()})

shared = SharedDataMiddleware(make_app(), {"/files": os.path.join(HERE, "files")})


class Logging:
    """A wrapper corral does not know, which leaves paths alone."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class PrefixStrip:
    """A wrapper that moves the app under a prefix: the Flask app's rules
    are not this app's routes."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/prefix"):
            environ["PATH_INFO"] = path[len("/prefix") :]
        return self.app(environ, start_response)


logged = Logging(make_app())
stripped = PrefixStrip(make_app())


class WhiteNoise:
    """Looks like whitenoise.WhiteNoise (which is not installed here)."""

    def __init__(self, application):
        self.application = application
        self.directories = [(HERE, "/assets/"), (HERE, "/")]
        self.files = {"/robots.txt": None, "/favicon.ico": None, "/assets/x.css": None}

    def __call__(self, environ, start_response):
        return self.application(environ, start_response)


WhiteNoise.__module__ = "whitenoise.base"
whitenoised = WhiteNoise(make_app())


class ExplodingMap(Flask):
    """A Flask app whose rules cannot be listed: no routes, but it boots."""

    @property
    def url_map(self):
        return self.__dict__["_real_map"]

    @url_map.setter
    def url_map(self, value):
        self.__dict__["_real_map"] = value


exploding = ExplodingMap(__name__)
exploding.add_url_rule("/", "index", ok)
exploding.url_map.iter_rules = lambda: (_ for _ in ()).throw(
    RuntimeError("no rules today")
)

broken_rule = Flask(__name__)
broken_rule.url_map.converters["broken"] = BrokenConverter
broken_rule.add_url_rule("/fine/<int:n>", "fine", ok)
broken_rule.add_url_rule("/bad/<broken:x>", "bad", ok)
for _rule in broken_rule.url_map.iter_rules():
    for _conv in getattr(_rule, "_converters", {}).values():
        if isinstance(_conv, BrokenConverter):
            _conv.armed = True

no_merge = Flask(__name__, static_folder=None)
no_merge.url_map.merge_slashes = False
no_merge.add_url_rule("/a/b", "ab", ok)
