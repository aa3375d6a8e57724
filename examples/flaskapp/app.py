"""The Flask service from the project's seed, plus two routes for tests.

Routes:
    GET  /                 {"status": "ok"} as JSON
    GET  /user/<username>  raises Exception("user unknown"): a 500 on purpose,
                           to watch how a server reports application errors
    GET  /<int:year>       the year back as text
    POST /login            401 unless the form has user=admin&password=secret
                           (a target for brute-force / ban tests)
    GET  /static/hello.txt a file from Flask's static folder

The seed's getuser(user) could never be called (Flask passes the keyword
argument `username`); the parameter is named to match the route here.
"""

import json

from flask import Flask, Response, request

app = Flask(__name__)  # static folder: ./static, served under /static/
application = app


@app.route("/")
def overview():
    # json.dumps as in the seed, but labelled as JSON.
    return Response(json.dumps({"status": "ok"}), mimetype="application/json")


@app.route("/user/<username>")
def getuser(username):
    raise Exception("user unknown")


@app.route("/<int:year>")
def getyear(year):
    return str(year)


@app.route("/login", methods=["POST"])
def login():
    if request.form.get("user") == "admin" and request.form.get("password") == "secret":
        return "welcome\n"
    return Response("invalid credentials\n", status=401, mimetype="text/plain")


if __name__ == "__main__":
    # Flask's development server, for a quick look only.
    app.run(host="127.0.0.1", port=8080)
