"""Route extraction (corral._routes): the routes a worker reports in HELLO.

- The regex translator, on its own (standard library only).
- Real Flask and Django apps booted in real workers: what HELLO carries for
  every converter, pattern form and wrapper.
- Cross-checks: every emitted regex compiles in Go's regexp, and for lists
  of sample paths the framework itself is asked which it routes; Go's
  verdict from the emitted routes must agree. A path the framework routes
  must always match (else the guard would count a legitimate request as a
  probe); a path it does not route may match only where the tests declare
  it, for the documented widenings.

The Flask and Django tests need those frameworks (scripts/test installs
them in .venv); the cross-checks need the go command.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from corral._re2 import Unsupported, class_regex, escape, translate

from .support import APPS_DIR, HELLO, PYTHON_DIR, WorkerTestCase

REPO = os.path.dirname(PYTHON_DIR)
PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "routes_probe.py")

HAVE_FLASK = importlib.util.find_spec("flask") is not None
HAVE_DJANGO = importlib.util.find_spec("django") is not None
GO = shutil.which("go")

needs_flask = unittest.skipUnless(
    HAVE_FLASK,
    "Flask is not importable by this Python (scripts/test installs it in .venv)",
)
needs_django = unittest.skipUnless(
    HAVE_DJANGO,
    "Django is not importable by this Python (scripts/test installs it in .venv)",
)
needs_go = unittest.skipUnless(
    GO, "the go command is not on PATH: the RE2 cross-check needs it"
)

# Reads {"regexes": [...], "paths": [...]}; writes, for every regex, the
# error Go's regexp gives ("" if none) and, for every path, the indexes of
# the regexes that match it.
GO_MATCHER = r"""
package main

import (
	"encoding/json"
	"os"
	"regexp"
)

func main() {
	var in struct {
		Regexes []string `json:"regexes"`
		Paths   []string `json:"paths"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		panic(err)
	}
	out := struct {
		Errors  []string `json:"errors"`
		Matches [][]int  `json:"matches"`
	}{Errors: make([]string, len(in.Regexes)), Matches: make([][]int, len(in.Paths))}
	res := make([]*regexp.Regexp, len(in.Regexes))
	for i, s := range in.Regexes {
		re, err := regexp.Compile(s)
		if err != nil {
			out.Errors[i] = err.Error()
			continue
		}
		res[i] = re
	}
	for j, p := range in.Paths {
		out.Matches[j] = []int{}
		for i, re := range res {
			if re != nil && re.MatchString(p) {
				out.Matches[j] = append(out.Matches[j], i)
			}
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		panic(err)
	}
}
"""

_go_dir = []


def go_match(regexes, paths):
    """(errors, matches) from Go's regexp: see GO_MATCHER."""
    if not _go_dir:
        d = tempfile.mkdtemp(prefix="corral-go-regexp-")
        with open(os.path.join(d, "go.mod"), "w") as f:
            f.write("module regexpcheck\n\ngo 1.21\n")
        with open(os.path.join(d, "main.go"), "w") as f:
            f.write(GO_MATCHER)
        env = dict(os.environ, GOTOOLCHAIN="local", GOWORK="off", GOFLAGS="-mod=mod")
        subprocess.run(
            [GO, "build", "-o", "matcher", "."],
            cwd=d,
            env=env,
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        _go_dir.append(d)
    out = subprocess.run(
        [os.path.join(_go_dir[0], "matcher")],
        input=json.dumps({"regexes": regexes, "paths": paths}).encode(),
        stdout=subprocess.PIPE,
        check=True,
    ).stdout
    res = json.loads(out)
    return res["errors"], res["matches"]


def tearDownModule():
    for d in _go_dir:
        shutil.rmtree(d, ignore_errors=True)


def probe(app, paths, verdict, chdir="", pythonpath=(APPS_DIR,)):
    """Run routes_probe.py in a fresh interpreter."""
    req = {
        "app": app,
        "chdir": chdir,
        "pythonpath": list(pythonpath),
        "verdict": verdict,
        "paths": paths,
    }
    proc = subprocess.run(
        [sys.executable, PROBE],
        input=json.dumps(req).encode(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
        timeout=120,
    )
    if proc.returncode:
        raise AssertionError("probe failed:\n" + proc.stderr.decode(errors="replace"))
    return json.loads(proc.stdout)


# ---------------------------------------------------------------------------
# The translator


class TranslateTest(unittest.TestCase):
    CASES = [
        # Python regex, RE2 body, anchored start, anchored end
        (r"^archive/(?P<year>[0-9]{4})/$", "archive/[0-9]{4}/", True, True),
        (r"^polls/(?P<question_id>[0-9]+)/\Z", "polls/[0-9]+/", True, True),
        (r"^polls/", "polls/", True, False),
        (r"tail/$", "tail/", False, True),
        (r"^(?P<n>\d+)$", "[0-9]+", True, True),
        (r"^\D$", "[^0-9]", True, True),
        (r"^[-\w]+$", "[^\\x00-,./:-@\\[-\\^`{-\\x7f]+", True, True),
        (r"^(?a)[-\w]+$", None, True, True),  # global flag not first: invalid
        (r"(?a)^[-\w]+$", "[-0-9A-Z_a-z]+", True, True),
        (r"^\W$", "[^0-9A-Z_a-z]", True, True),
        (r"^[^\w]$", "[^0-9A-Z_a-z]", True, True),
        (r"^\s$", "[^\\x00-\\x08\\x0e-\\x1b!-\\x7f]", True, True),
        (r"^\S$", "[^\\x09-\\x0d\\x1c-\\x20]", True, True),
        (r"(?i)^ci/$", "(?i:ci)/", True, True),
        (r"^a(?i:b)c$", "a(?i:b)c", True, True),
        (r"(?i)^a(?-i:b)c$", "(?i:a(?-i:b)c)", True, True),
        (r"^x|^y$", None, True, False),
        (r"^a/$|^b/$", "a/|b/", True, True),
        (r"^(a|bc)d$", "(?:a|bc)d", True, True),
        (r"^(?:(?:ab)+)?$", "(?:(?:ab)+)?", True, True),
        (r"^a*?b+?c??$", "a*?b+?c??", True, True),
        (r"^a{2}b{2,}c{2,5}d{0,3}$", "a{2}b{2,}c{2,5}d{0,3}", True, True),
        (r"^.$", ".", True, True),
        (r"(?s)^.$", "(?s:.)", True, True),
        (
            r"^[.]\.\$\^\(\)\[\]\{\}\|\?\*\+\\$",
            "\\.\\.\\$\\^\\(\\)\\[\\]\\{\\}\\|\\?\\*\\+\\\\",
            True,
            True,
        ),
        (r"^a b#c~d$", "a\\x20b#c~d", True, True),
        ("^caf\u00e9/\u0436$", "caf\u00e9/\u0436", True, True),
        ("^\u00a0\u00ad\u0085\u00ff$", "\\xa0\\xad\\x85\u00ff", True, True),
        ("^[\u0430-\u044f]+$", "[\u0430-\u044f]+", True, True),
        (r"^[^/]+$", "[^/]+", True, True),
        (r"^[^a-z0-9]$", "[^0-9a-z]", True, True),
        (r"^\x00\t$", "\\x00\\x09", True, True),
        (r"^[\]\-^]$", "[-\\]\\^]", True, True),
    ]

    def test_cases(self):
        for pattern, body, start, end in self.CASES:
            with self.subTest(pattern=pattern):
                if body is None:
                    try:
                        p = translate(pattern)
                    except Unsupported:
                        continue
                    self.assertEqual((p.start, p.end), (start, end))
                    continue
                p = translate(pattern)
                self.assertEqual(p.body, body)
                self.assertEqual((p.start, p.end), (start, end))
                self.assertEqual(p.relaxed, [])
                re.compile(p.body)  # both engines read it

    def test_literal_prefix(self):
        for pattern, literal, whole in [
            (r"^polls/", "polls/", True),
            (r"^polls/(?P<x>\d+)/", "polls/", False),
            (r"^(?i)x", "", False),
            (r"^a\.b$", "a.b", True),
            (r"foo", "foo", True),
        ]:
            with self.subTest(pattern=pattern):
                try:
                    p = translate(pattern)
                except Unsupported:
                    continue
                self.assertEqual((p.literal, p.whole), (literal, whole))

    RELAXED = [
        # Python regex, RE2 body, what was relaxed
        (
            r"^(?!admin)(?P<x>\w+)/$",
            "[^\\x00-/:-@\\[-\\^`{-\\x7f]+/",
            "lookaround dropped",
        ),
        (r"^a(?=b)b$", "ab", "lookaround dropped"),
        (r"^(?<=x)a$", "a", "lookaround dropped"),
        (r"^(?P<a>[a-z])(?P=a)$", "[a-z][a-z]", "backreference as a copy of its group"),
        (r"^(x)?(?(1)a|b)$", "x?(?:a|b)", "conditional group as an alternation"),
        (r"^\bfoo\B$", "foo", "word boundary dropped"),
        (r"^a$b$", "ab", "anchor inside the pattern dropped"),
        (r"^a{1001}$", "a{1000,}", "repeat count above 1000"),
        (r"^a{2,2000}$", "a{2,}", "repeat count above 1000"),
        (r"^(?:a{100}){100}$", "(?:a+){100}", "nested repeat counts too large for Go"),
    ]
    if sys.version_info >= (3, 11):
        RELAXED += [
            (r"^a*+b$", "a*b", "possessive repeat as a greedy one"),
            (r"^(?>ab|a)c$", "a(?:b|)c", "atomic group as a plain group"),
        ]

    def test_relaxed(self):
        for pattern, body, what in self.RELAXED:
            with self.subTest(pattern=pattern):
                p = translate(pattern)
                self.assertEqual(p.body, body)
                self.assertIn(what, p.relaxed)

    def test_unsupported(self):
        for pattern in ["(unclosed", "[\ud800-\udfff]", "x{2}{3}"]:
            with self.subTest(pattern=pattern):
                with self.assertRaises(Unsupported):
                    translate(pattern)

    def test_class_regex(self):
        self.assertEqual(class_regex([(0x61, 0x61)]), "a")
        self.assertEqual(class_regex([(0x30, 0x39), (0x61, 0x66)]), "[0-9a-f]")
        self.assertEqual(class_regex([(0, 0x2E), (0x30, 0x10FFFF)]), "[^/]")
        self.assertEqual(class_regex([(0, 0x10FFFF)]), "(?s:.)")
        self.assertEqual(class_regex([(0x100, 0x101)]), "[\u0100\u0101]")
        with self.assertRaises(Unsupported):
            class_regex([])

    def test_escape(self):
        for text in ["/a.b+c(d)", "/caf\u00e9", "/x y\t", "/[^$]{}|?*\\"]:
            with self.subTest(text=text):
                self.assertTrue(re.fullmatch(escape(text), text))

    @needs_go
    def test_go_agrees(self):
        """Go compiles every translation, and matches what Python's regex
        matches: exactly when nothing was relaxed, at least when it was."""
        samples = [
            "archive/2024/",
            "archive/24/",
            "polls/7/",
            "tail/",
            "xtail/",
            "42",
            "x",
            "a-b_c",
            "caf\u00e9",
            "\u00e9t\u00e9",
            "a b",
            "\t",
            "\u00a0",
            "CI/",
            "ci/",
            "Ci/",
            "aBc",
            "abc",
            "ABC",
            "ab",
            "a",
            "b",
            "bcd",
            "ad",
            "abab",
            "",
            "aab",
            "admin/",
            "bob/",
            "xx",
            "xy",
            "foo",
            "\u0436",
            "\u043f\u0440\u0438",
            "/",
            "/x",
            "x/y",
            "-",
            "]",
            "^",
            "a{",
            "x\n",
            "\n",
        ]
        patterns = [c[0] for c in self.CASES if c[1] is not None] + [
            r[0] for r in self.RELAXED
        ]
        pieces = [translate(p) for p in patterns]
        errors, matches = go_match(["^(?:%s)$" % p.body for p in pieces], samples)
        for pattern, piece, err in zip(patterns, pieces, errors):
            self.assertEqual(err, "", "%r -> %r" % (pattern, piece.body))
        for j, sample in enumerate(samples):
            for i, (pattern, piece) in enumerate(zip(patterns, pieces)):
                py = re.compile(pattern).fullmatch(sample) is not None
                go = i in matches[j]
                if py and not go:
                    self.fail(
                        "%r matches %r in Python but not its translation %r in Go"
                        % (pattern, sample, piece.body)
                    )
                # \w \W \s \S take every non-ASCII character (documented).
                wide = not sample.isascii() and re.search(r"\\[wWsS]", pattern)
                if go and not py and not piece.relaxed and not wide:
                    self.fail(
                        "translation %r of %r matches %r in Go, Python does not"
                        % (piece.body, pattern, sample)
                    )


# ---------------------------------------------------------------------------
# Real apps in real workers


def routes_by_rule(routes):
    return {r["rule"]: r for r in routes["routes"]}


class BootRoutesTest(WorkerTestCase):
    def hello_routes(self, app, mode="routes", **kwargs):
        master = self.serve(app, mode=mode, **kwargs)
        self.assertEqual(master.hello.kind, HELLO)
        return master, master.hello.json()["routes"]

    def test_plain_app_has_no_routes(self):
        master, routes = self.hello_routes("hello:app")
        self.assertIsNone(routes)
        self.assertEqual(master.wait_exit(), 0)
        self.assertNotIn("corral: routes", master.output)

    def test_hostile_app_still_boots_and_serves(self):
        master, routes = self.hello_routes("hostile:app", mode="serve")
        self.assertIsNone(routes)
        self.assertEqual(master.get(1).body, b"still serving")
        master.wait_output("corral: routes: extraction failed")


@needs_flask
class FlaskRoutesTest(WorkerTestCase):
    def hello_routes(self, app, **kwargs):
        master = self.serve(app, mode="routes", **kwargs)
        routes = master.hello.json()["routes"]
        self.assertEqual(master.wait_exit(), 0)
        return master, routes

    def test_converters_and_rules(self):
        _, routes = self.hello_routes("flask_routes:app")
        self.assertEqual(routes["framework"], "flask")
        got = {r: v["regex"] for r, v in routes_by_rule(routes).items()}
        want = {
            "/": "^/$",
            "/str/<s>": "^/str/[^/]+$",
            "/len/<string(length=3):code>": "^/len/[^/]{3}$",
            "/minmax/<string(minlength=2, maxlength=4):x>": "^/minmax/[^/]{2,4}$",
            "/long/<string(maxlength=2000):x>": "^/long/[^/]+$",
            "/int/<int:n>": "^/int/[0-9]+$",
            "/signed/<int(signed=True):n>": "^/signed/-?[0-9]+$",
            "/month/<int(min=1, max=12):m>": "^/month/0*[0-9]{1,2}$",
            "/fixed/<int(fixed_digits=4):y>": "^/fixed/[0-9]{4}$",
            "/float/<float:f>": "^/float/[0-9]+\\.[0-9]+$",
            "/path/<path:p>": "^/path/.+$",
            "/edit/<path:p>/edit": "^/edit/.+/edit$",
            "/uuid/<uuid:u>": "^/uuid/[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-"
            "[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$",
            "/any/<any(about, 'help.me', contact):page>": "^/any/(?:about|help\\.me|contact)$",
            "/hex/<hex:h>": "^/hex/[0-9A-Fa-f]+$",
            "/notzero/<notzero:n>": "^/notzero/[0-9]{2}$",
            "/two/<a>-<int:b>.html": "^/two/[^/]+-[0-9]+\\.html$",
            "/dir/": "^/dir/?$",
            "/a.b+c(d)": "^/a\\.b\\+c\\(d\\)$",
            "/caf\u00e9/<x>": "^/caf\u00e9/[^/]+$",
            "/post-only": "^/post-only$",
            "/loose": "^/loose/?$",
            "/loose-dir/": "^/loose-dir/?$",
            "/sub": "^/sub$",
            "/old": "^/old$",
            "/bp/page/<int:n>": "^/bp/page/[0-9]+$",
            "/files/<path:filename>": "^/files/.+$",
            "/bp/files/<path:filename>": "^/bp/files/.+$",
            "/<path with //>": "^(?s:.*//.*)$",
        }
        self.assertEqual(got, want)
        by_rule = routes_by_rule(routes)
        self.assertEqual(by_rule["/post-only"]["methods"], ["OPTIONS", "POST"])
        self.assertEqual(by_rule["/"]["methods"], ["GET", "HEAD", "OPTIONS"])
        self.assertEqual(by_rule["/<path with //>"]["methods"], [])
        self.assertEqual(by_rule["/"]["endpoint"], "r0")
        self.assertTrue(by_rule["/files/<path:filename>"]["static"])
        self.assertTrue(by_rule["/bp/files/<path:filename>"]["static"])
        self.assertEqual(by_rule["/bp/files/<path:filename>"]["endpoint"], "bp.static")
        self.assertNotIn("static", by_rule["/"])
        self.assertNotIn("/build-only", by_rule)
        # The anchored converter cannot be expressed: its literal prefix.
        self.assertEqual(routes["prefixes"], ["/ver/"])
        warnings = "\n".join(routes["warnings"])
        for want in [
            "'/ver/<anchored:v>/info': converter AnchoredConverter: anchors",
            "'/notzero/<notzero:n>': lookaround dropped",
            "'/long/<string(maxlength=2000):x>': repeat count above 1000",
            "host and subdomain matching ignored",
        ]:
            self.assertIn(want, warnings)

    def test_wrappers(self):
        _, base = self.hello_routes("flask_routes:app")
        for app in ["proxied", "inner_wrapped", "logged"]:
            with self.subTest(app=app):
                _, routes = self.hello_routes("flask_routes:" + app)
                self.assertEqual(routes["routes"], base["routes"])
                self.assertEqual(routes["prefixes"], base["prefixes"])
        _, routes = self.hello_routes("flask_routes:logged")
        self.assertIn(
            "assuming flask_routes.Logging passes every request to "
            "flask.app.Flask unchanged",
            routes["warnings"],
        )

    def test_dispatcher_mounts(self):
        _, routes = self.hello_routes("flask_routes:dispatched")
        by_rule = routes_by_rule(routes)
        self.assertEqual(by_rule["/api/"]["regex"], "^/api/?$")
        self.assertEqual(by_rule["/api/items/<int:n>"]["regex"], "^/api/items/[0-9]+$")
        self.assertEqual(by_rule["/api/<path with //>"]["regex"], "^/api(?s:.*//.*)$")
        self.assertEqual(by_rule["/legacy"]["regex"], "^/legacy$")
        self.assertIn("/str/<s>", by_rule)
        self.assertEqual(routes["prefixes"], ["/legacy/", "/ver/"])
        _, routes = self.hello_routes("flask_routes:only_mounts")
        self.assertEqual(
            sorted(routes_by_rule(routes)),
            [
                "/v1/",
                "/v1/<path with //>",
                "/v1/items/<int:n>",
                "/v1/static/<path:filename>",
            ],
        )
        # A plain WSGI app at the root: nothing can be told.
        master, routes = self.hello_routes("flask_routes:unknown_root")
        self.assertIsNone(routes)

    def test_static_wrappers(self):
        _, routes = self.hello_routes("flask_routes:shared")
        by_rule = routes_by_rule(routes)
        self.assertEqual(
            by_rule["/files/<path>"],
            {
                "rule": "/files/<path>",
                "regex": "^/files/.+$",
                "methods": ["GET", "HEAD"],
                "endpoint": "SharedDataMiddleware",
                "static": True,
            },
        )
        self.assertNotIn("/files/<path:filename>", by_rule)  # the same regex, once
        _, routes = self.hello_routes("flask_routes:whitenoised")
        by_rule = routes_by_rule(routes)
        self.assertEqual(by_rule["/assets/<path>"]["regex"], "^/assets/.+$")
        self.assertEqual(by_rule["/robots.txt"]["regex"], "^/robots\\.txt$")
        self.assertEqual(by_rule["/favicon.ico"]["endpoint"], "WhiteNoise")
        self.assertIn("/str/<s>", by_rule)

    def test_path_rewriting_wrapper_gives_up(self):
        master, routes = self.hello_routes("flask_routes:stripped")
        self.assertIsNone(routes)
        self.assertIn(
            "corral: routes: flask_routes.PrefixStrip reads or rewrites the "
            "request path itself; routes will be learned from traffic",
            master.output,
        )

    def test_broken_rule_becomes_a_prefix(self):
        _, routes = self.hello_routes("flask_routes:broken_rule")
        self.assertEqual(
            routes_by_rule(routes)["/fine/<int:n>"]["regex"], "^/fine/[0-9]+$"
        )
        self.assertEqual(routes["prefixes"], ["/bad/"])
        self.assertIn(
            "rule '/bad/<broken:x>': RuntimeError: converter exploded; every "
            "path under '/bad/' counts as a route",
            routes["warnings"],
        )

    def test_extraction_failure_does_not_break_boot(self):
        master = self.serve("flask_routes:exploding")
        self.assertIsNone(master.hello.json()["routes"])
        self.assertEqual(master.get(1).body, b"ok")
        master.wait_output(
            "corral: routes: extraction failed (RuntimeError: no rules today)"
        )

    def test_no_merge_slashes(self):
        _, routes = self.hello_routes("flask_routes:no_merge")
        self.assertEqual([r["regex"] for r in routes["routes"]], ["^/a/b$"])
        # Werkzeug still strips leading slashes.
        self.assertEqual(routes["prefixes"], ["//"])

    def test_serve_mode_reports_routes_too(self):
        master = self.serve("flask_routes:app", mode="serve")
        self.assertEqual(master.hello.json()["routes"]["framework"], "flask")
        self.assertEqual(master.get(1, "/int/3").body, b"ok")

    def test_too_many_routes_for_hello(self):
        master, routes = self.hello_routes("flask_many:make(2000)")
        self.assertEqual(len(routes["routes"]), 2000 + 2)  # + static, merge_slashes
        self.assertEqual(routes["routes"][1]["rule"], "")
        self.assertEqual(routes["routes"][1]["endpoint"], "")
        self.assertTrue(
            routes["routes"][1]["regex"].startswith("^/a-long-path-segment")
        )
        self.assertIn(
            "2002 routes: too many to describe; rules and endpoints left out",
            routes["warnings"],
        )
        master, routes = self.hello_routes("flask_many:make(3500)")
        self.assertIsNone(routes)
        self.assertIn(
            "corral: routes: 3502 routes do not fit in the handshake", master.output
        )


@needs_django
class DjangoRoutesTest(WorkerTestCase):
    def hello_routes(self, app, **kwargs):
        master = self.serve(app, mode="routes", **kwargs)
        routes = master.hello.json()["routes"]
        self.assertEqual(master.wait_exit(), 0)
        return master, routes

    def test_patterns(self):
        _, routes = self.hello_routes("djroutes.wsgi:application")
        self.assertEqual(routes["framework"], "django")
        by_rule = routes_by_rule(routes)
        want = {
            "/": ("^/$", "home"),
            "/str/<str:s>/": ("^/str/[^/]+/?$", "str"),
            "/int/<int:n>/": ("^/int/[0-9]+/?$", "int"),
            "/slug/<slug:s>/": ("^/slug/[-0-9A-Z_a-z]+/?$", "slug"),
            "/uuid/<uuid:u>/": (
                "^/uuid/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                "[0-9a-f]{12}/?$",
                "uuid",
            ),
            "/path/<path:p>": ("^/path/.+$", "path"),
            "/year/<year:y>/": ("^/year/[0-9]{4}/?$", "year"),
            "/nzyear/<nzyear:y>/": ("^/nzyear/[0-9]{4}/?$", "nzyear"),
            "/shop/items/": ("^/shop/items/?$", "shop:items:list"),
            "/shop/items/<int:pk>/": ("^/shop/items/[0-9]+/?$", "shop:items:detail"),
            "/shop/cart/": ("^/shop/cart/?$", "shop:cart"),
            "/re/(?P<year>[0-9]{4})/(?P<slug>[\\w-]+)/": (
                "^/re/[0-9]{4}/[^\\x00-,./:-@\\[-\\^`{-\\x7f]+/?$",
                "re",
            ),
            "/noend/(?P<n>\\d+)": ("^/noend/[0-9]+(?s:.*)$", "noend"),
            "/tail/": ("^/tail/?$", "tail"),
            "/look/(?!admin)(?P<name>\\w+)/": (
                "^/look/[^\\x00-/:-@\\[-\\^`{-\\x7f]+/?$",
                "look",
            ),
            "/back/(?P<a>[a-z])(?P=a)/": ("^/back/[a-z][a-z]/?$", "back"),
            "/(?i)^ci/": ("^/(?i:ci)/?$", "ci"),
            "/blog/(?P<lang>[a-z]{2})/": ("^/blog/[a-z]{2}/?$", "blog"),
            "/blog/(?P<lang>[a-z]{2})/<slug:s>/": (
                "^/blog/[a-z]{2}/[-0-9A-Z_a-z]+/?$",
                "post",
            ),
            "/noslash/": ("^/noslash/$", "noslash"),
            "/admin/": ("^/admin/?$", "admin:index"),
            "/admin/login/": ("^/admin/login/?$", "admin:login"),
            "/admin/(?P<url>.*)": (
                "^/admin/.*$",
                "django.contrib.admin.sites.AdminSite.catch_all_view",
            ),
            "/media/(?P<path>.*)": ("^/media/.*$", "django.views.static.serve"),
            "/static/<path>": ("^/static/.+$", "STATIC_URL"),
            "/media/<path>": ("^/media/.+$", "MEDIA_URL"),
        }
        for rule, (regex, endpoint) in want.items():
            with self.subTest(rule=rule):
                self.assertIn(rule, by_rule)
                self.assertEqual(by_rule[rule]["regex"], regex)
                self.assertEqual(by_rule[rule]["endpoint"], endpoint)
                if rule not in ("/static/<path>", "/media/<path>"):
                    self.assertEqual(by_rule[rule]["methods"], [])
        for rule in ["/media/(?P<path>.*)", "/static/<path>", "/media/<path>"]:
            self.assertTrue(by_rule[rule]["static"], rule)
        self.assertNotIn("static", by_rule["/"])
        self.assertIn("/admin/auth/user/<path:object_id>/change/", by_rule)
        self.assertEqual(routes["prefixes"], ["/custom/", "/broken/"])
        warnings = "\n".join(routes["warnings"])
        for want in [
            "'nzyear/<nzyear:y>/': lookaround dropped",
            "'look/(?!admin)(?P<name>\\\\w+)/': lookaround dropped",
            "backreference as a copy of its group",
            "'/custom/x': a StartsWith has no regex; every path under '/custom/'",
            "'/broken/': ImproperlyConfigured",
        ]:
            self.assertIn(want, warnings)
        for w in routes["warnings"]:
            self.assertLessEqual(len(w), 300)

    def test_i18n(self):
        _, routes = self.hello_routes("djroutes.wsgi_i18n:application")
        by_rule = routes_by_rule(routes)
        self.assertEqual(by_rule["/api/"]["regex"], "^/api/$")  # APPEND_SLASH off
        self.assertEqual(
            by_rule["/<language>/about/"]["regex"], "^/(?:(?i:en|fr|pt-br)/)?about/$"
        )
        self.assertEqual(
            by_rule["/<language>/contact/"]["regex"],
            "^/(?:(?i:en|fr|pt-br)/)?(?:contact/|contactez/)$",
        )
        self.assertIn(
            "i18n_patterns: any of the 3 languages of LANGUAGES as a prefix, "
            "or none (LocaleMiddleware redirects)",
            routes["warnings"],
        )

    def test_wrappers(self):
        _, base = self.hello_routes("djroutes.wsgi:application")
        _, routes = self.hello_routes("djroutes.wsgi_wrapped:whitenoised")
        self.assertEqual(routes["routes"][0]["regex"], "^/assets/.+$")
        self.assertEqual(routes["routes"][1:], base["routes"])
        _, routes = self.hello_routes("djroutes.wsgi_wrapped:static_handler")
        self.assertEqual(
            routes["routes"][0],
            {
                "rule": "/static/<path>",
                "regex": "^/static/.+$",
                "methods": ["GET", "HEAD"],
                "endpoint": "staticfiles",
                "static": True,
            },
        )
        self.assertEqual(
            routes["routes"][1:],
            [r for r in base["routes"] if r["endpoint"] != "STATIC_URL"],
        )

    def test_routes_beyond_the_urlconf(self):
        for app, says in [
            (
                "djroutes.wsgi_flatpages:application",
                "FlatpageFallbackMiddleware answers any path with flat pages from the database",
            ),
            (
                "djroutes.wsgi_hosts:application",
                "djroutes.middleware.HostURLconf sets request.urlconf",
            ),
        ]:
            with self.subTest(app=app):
                master, routes = self.hello_routes(app)
                self.assertIsNone(routes)
                self.assertIn("corral: routes: " + says, master.output)

    def test_unimportable_urlconf_does_not_break_boot(self):
        master = self.serve("djroutes.wsgi_badurls:application")
        self.assertIsNone(master.hello.json()["routes"])
        master.wait_output("corral: routes: extraction failed (ModuleNotFoundError")


# ---------------------------------------------------------------------------
# Cross-checks: Go's verdict from the routes against the framework's own


class CrossCheck:
    """Mixin: compare, path by path."""

    def cross_check(self, app, paths, verdict, wider=(), narrower=(), **kwargs):
        res = probe(app, paths, verdict, **kwargs)
        routes = res["routes"]
        self.assertIsNotNone(routes, app)
        regexes = [r["regex"] for r in routes["routes"]]
        errors, matches = go_match(regexes, paths)
        for regex, err in zip(regexes, errors):
            self.assertEqual(err, "", "Go cannot compile %r" % regex)
            re.compile(regex)  # nor Python
            self.assertTrue(regex.startswith("^") and regex.endswith("$"), regex)
        problems = []
        for path, routed, hits in zip(paths, res["routed"], matches):
            known = bool(hits) or any(path.startswith(p) for p in routes["prefixes"])
            if routed and not known and path not in narrower:
                problems.append("%r is routed by the app but matches no route" % path)
            if known and not routed and path not in wider:
                problems.append(
                    "%r matches %s but the app does not route it"
                    % (path, [regexes[i] for i in hits] or routes["prefixes"])
                )
            if path in wider and not (known and not routed):
                problems.append("%r is declared wider but agrees" % path)
            if path in narrower and not (routed and not known):
                problems.append("%r is declared narrower but agrees" % path)
        if problems:
            self.fail("%s:\n  %s" % (app, "\n  ".join(problems)))
        return routes


FLASK_TEST_PATHS = [
    "/",
    "//",
    "///",
    "/str/x",
    "/str/x/",
    "/str/",
    "/str",
    "/str//x",
    "///str/x",
    "/str///x",
    "/str/a b",
    "/str/caf\u00e9",
    "/str//",
    "/len/abc",
    "/len/ab",
    "/len/abcd",
    "/minmax/a",
    "/minmax/ab",
    "/minmax/abcd",
    "/minmax/abcde",
    "/long/" + "x" * 1500,
    "/long/x",
    "/int/0",
    "/int/42",
    "/int/007",
    "/int/-1",
    "/int/1.5",
    "/int/x",
    "/int/\u0663",
    "/signed/-5",
    "/signed/5",
    "/signed/--5",
    "/month/1",
    "/month/12",
    "/month/012",
    "/month/13",
    "/month/0",
    "/month/123",
    "/fixed/2024",
    "/fixed/24",
    "/fixed/02024",
    "/float/1.5",
    "/float/1",
    "/float/-1.5",
    "/float/1.",
    "/path/a",
    "/path/a/b/c",
    "/path/",
    "/path//a",
    "/path/a//b",
    "/edit/a/edit",
    "/edit/a/b/edit",
    "/edit/edit",
    "/edit//edit",
    "/uuid/12345678-1234-1234-1234-123456789abc",
    "/uuid/12345678-1234-1234-1234-123456789ABC",
    "/uuid/1234",
    "/any/about",
    "/any/help.me",
    "/any/helpxme",
    "/any/contact",
    "/any/other",
    "/hex/00ff",
    "/hex/xyz",
    "/notzero/12",
    "/notzero/00",
    "/notzero/123",
    "/ver/v1/info",
    "/ver/x/info",
    "/two/a-1.html",
    "/two/a-b.html",
    "/two/a-1xhtml",
    "/two/a-b-1.html",
    "/dir/",
    "/dir",
    "/dir//",
    "/a.b+c(d)",
    "/aXb+c(d)",
    "/caf\u00e9/x",
    "/cafe/x",
    "/post-only",
    "/post-only/",
    "/loose",
    "/loose/",
    "/loose//",
    "/loose-dir",
    "/loose-dir/",
    "/sub",
    "/old",
    "/old/",
    "/build-only",
    "/bp/page/1",
    "/bp/page/x",
    "/bp/files/sibling.py",
    "/files/sibling.py",
    "/files/missing.txt",
    "/wp-admin/",
    "/.env",
    "/favicon.ico",
    "/robots.txt",
    "/admin/login.php",
]

FLASK_EXAMPLE_PATHS = [
    "/",
    "//",
    "///",
    "/user/bob",
    "/user/bob/",
    "/user/",
    "/user",
    "/user//bob",
    "//user/bob",
    "/user/bob/x",
    "/user/bob x",
    "/user/\u00e9",
    "/2024",
    "/0042",
    "/-1",
    "/2024/",
    "/20x24",
    "/abc",
    "/login",
    "/login/",
    "/Login",
    "/static/hello.txt",
    "/static/",
    "/static",
    "/static/a/b/c.css",
    "/static//x",
    "/static/../etc/passwd",
    "/wp-admin",
    "/wp-login.php",
    "/.env",
    "/admin/",
    "/favicon.ico",
    "/cgi-bin/test.cgi",
    "/\u0663",
]

DJANGO_TEST_PATHS = [
    "/",
    "//",
    "/str/x/",
    "/str/x",
    "/str//",
    "/str/x/y/",
    "/int/1/",
    "/int/x/",
    "/int/1",
    "/slug/a-b_c/",
    "/slug/a.b/",
    "/uuid/12345678-1234-1234-1234-123456789abc/",
    "/uuid/12345678-1234-1234-1234-123456789ABC/",
    "/path/a/b",
    "/path/",
    "/year/2024/",
    "/year/24/",
    "/nzyear/2024/",
    "/nzyear/0000/",
    "/shop/items/",
    "/shop/items",
    "/shop/items/3/",
    "/shop/cart/",
    "/shop/",
    "/shop/other/",
    "/re/2024/hello-world/",
    "/re/2024/h\u00e9llo/",
    "/re/2024/a.b/",
    "/re/24/x/",
    "/noend/12",
    "/noend/12/anything",
    "/noend/x",
    "/tail/",
    "/tail",
    "/xtail/",
    "/look/bob/",
    "/look/admin/",
    "/look/b\u00f6b/",
    "/back/aa/",
    "/back/ab/",
    "/ci/",
    "/CI/",
    "/ci",
    "/Ci",
    "/blog/en/",
    "/blog/en/post-1/",
    "/blog/eng/",
    "/blog/en",
    "/noslash/",
    "/noslash",
    "/custom/x",
    "/custom/y",
    "/broken/x",
    "/admin/",
    "/admin",
    "/admin/login/",
    "/admin/anything/here",
    "/media/x.png",
    "/static/x.css",
    "/wp-login.php",
    "/.git/config",
]

DJANGO_I18N_PATHS = [
    "/api/",
    "/api",
    "/en/about/",
    "/fr/about/",
    "/pt-br/about/",
    "/about/",
    "/de/about/",
    "/en/contact/",
    "/fr/contactez/",
    "/fr/contact/",
    "/en/contactez/",
    "/contact/",
    "/about",
    "/en/",
    "/",
    "/wp-login.php",
]

DJANGO_EXAMPLE_PATHS = [
    "/",
    "//",
    "/echo/",
    "/echo",
    "/echo//",
    "/polls/",
    "/polls",
    "/polls/1/",
    "/polls/1",
    "/polls/01/",
    "/polls/x/",
    "/polls/-1/",
    "/polls/boom/",
    "/polls/boom",
    "/polls/best-server/results/",
    "/polls/best-server/results",
    "/polls/best_server/results/",
    "/polls/bad server/results/",
    "/polls/a/b/results/",
    "/archive/2024/",
    "/archive/2024",
    "/archive/24/",
    "/archive/20245/",
    "/archive/\u0662\u0660\u0662\u0664/",
    "/wp-login.php",
    "/admin/",
    "/.git/config",
    "/polls/1/extra/",
    "/ECHO/",
    "/static/x.css",
    "/favicon.ico",
]


def pairwise_merge(paths):
    """paths, if this Werkzeug merges slashes two by two (before 2026 it
    turned /// into //, so /a///b stays a 404): corral's catch-all counts
    every path with // as known either way."""
    from werkzeug.exceptions import NotFound
    from werkzeug.routing import Map, Rule

    adapter = Map([Rule("/a/b", endpoint="ab")]).bind("localhost")
    try:
        adapter.match("/a///b")
    except NotFound:
        return set(paths)
    except Exception:
        pass
    return set()


@needs_go
@needs_flask
class FlaskCrossCheckTest(CrossCheck, unittest.TestCase):
    def test_flask_test_app(self):
        self.cross_check(
            "flask_routes:app",
            FLASK_TEST_PATHS,
            "wsgi",
            wider={
                "/month/13",
                "/month/0",  # min/max: checked by Werkzeug on the value
                "/notzero/00",  # the lookahead dropped
                "/ver/x/info",  # the anchored converter's prefix
                "/sub",  # subdomain rules count on every host
                "/files/missing.txt",  # routed; the view answers 404
                "/str//",
                "/edit//edit",  # merged, still nothing: 404
            }
            | pairwise_merge({"/str///x"}),
            narrower={"/int/\u0663"},  # int() reads non-ASCII digits; [0-9] does not
        )

    def test_wrapped_apps(self):
        paths = [
            "/",
            "/api",
            "/api/",
            "/api/items/3",
            "/api/items/x",
            "/apix",
            "/legacy",
            "/legacy/",
            "/legacy/anything",
            "/legacyx",
            "/int/3",
            "/v1",
            "/v1/items/2",
            "/files/sibling.py",
            "/files/",
            "/str/x",
        ]
        self.cross_check("flask_routes:dispatched", paths, "wsgi")
        self.cross_check("flask_routes:only_mounts", paths, "wsgi")
        self.cross_check("flask_routes:shared", paths, "wsgi")

    def test_example(self):
        self.cross_check(
            "app:app",
            FLASK_EXAMPLE_PATHS,
            "werkzeug",
            chdir=os.path.join(REPO, "examples", "flaskapp"),
            pythonpath=(),
            narrower={"/\u0663"},  # int() reads non-ASCII digits; [0-9] does not
        )


@needs_go
@needs_django
class DjangoCrossCheckTest(CrossCheck, unittest.TestCase):
    def test_django_test_project(self):
        self.cross_check(
            "djroutes.wsgi:application",
            DJANGO_TEST_PATHS,
            "django",
            wider={
                "/nzyear/0000/",
                "/look/admin/",
                "/back/ab/",  # relaxed patterns
                "/custom/y",  # a pattern class without a regex: its prefix
                "/static/x.css",  # STATIC_URL, whoever serves it
            },
        )

    def test_django_i18n(self):
        self.cross_check(
            "djroutes.wsgi_i18n:application",
            DJANGO_I18N_PATHS,
            "django",
            wider={
                "/fr/contact/",
                "/en/contactez/",
            },  # every translation on every prefix
        )

    def test_example(self):
        self.cross_check(
            "mysite.wsgi:application",
            DJANGO_EXAMPLE_PATHS,
            "django",
            chdir=os.path.join(REPO, "examples", "djangoproject"),
            pythonpath=(),
        )


if __name__ == "__main__":
    unittest.main()
