"""The Flask workload of bench/run (GET / answers {"status": "ok"}) in an
app with 100 route patterns, for bench/guard: the guard's route matcher
then has as many patterns to try as a mid-sized app."""

import json

from flask import Flask, Response

app = Flask(__name__)


@app.route("/")
def overview():
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


def _make(i):
    def page():
        return "page %d" % i

    def item(item_id):
        return "item %d of %d" % (item_id, i)

    return page, item


# 1 + 50 literal routes + 49 with a converter = 100 patterns.
for _i in range(50):
    _page, _item = _make(_i)
    app.add_url_rule("/section%d/page" % _i, "page%d" % _i, _page)
    if _i < 49:
        app.add_url_rule("/section%d/item/<int:item_id>" % _i, "item%d" % _i, _item)
