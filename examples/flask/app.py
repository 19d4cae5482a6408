"""A small Flask site served by cocaine's Python runtime as a WSGI app.

Under cocaine it lives at /flask/http/ (the front passes SCRIPT_NAME
/flask/http), so every link goes through url_for and works under any
prefix, and under uWSGI at / as well (bench/run.sh serves this same file).
"""

import time

from flask import Flask, Response, jsonify, render_template, request, stream_with_context, url_for

app = Flask(__name__)

MAX_LINES = 100
MAX_DELAY = 2.0


@app.route("/")
def index():
    return render_template("index.html")


@app.route("/form", methods=["GET", "POST"])
def form():
    # The template escapes the name: it comes from the client.
    name = request.form.get("name", "") if request.method == "POST" else None
    return render_template("form.html", name=name)


@app.route("/api/info")
def info():
    return jsonify(
        app="flask",
        method=request.method,
        script_root=request.script_root,
        path=request.path,
        args=request.args.to_dict(),
        index=url_for("index"),
    )


def _number(name, default, cast, top):
    try:
        v = cast(request.args.get(name, default))
    except ValueError:
        v = default
    return min(max(v, 0), top)


@app.route("/stream")
def stream():
    # Read the query here and in the generator alike: stream_with_context
    # keeps the request alive while the generator runs, after this view
    # has returned.
    n = _number("n", 5, int, MAX_LINES)

    @stream_with_context
    def lines():
        delay = _number("delay", 0.2, float, MAX_DELAY)
        for i in range(n):
            if i:
                time.sleep(delay)
            yield "line %d of %d from %s\n" % (i + 1, n, request.path)

    return Response(lines(), mimetype="text/plain")
