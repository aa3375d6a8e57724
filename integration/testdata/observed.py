"""A Flask app for the observability tests: routes with variables (for the
route label), a slow one (a running request on the status page) and one
that kills its worker (a restart with reason crash)."""

import os
import time

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return "hello\n"


@app.route("/item/<int:item_id>")
def item(item_id):
    return "item %d\n" % item_id


@app.route("/slow/<float:seconds>")
def slow(seconds):
    time.sleep(seconds)
    return "slept\n"


@app.route("/crash")
def crash():
    os._exit(3)
