"""The probes sample: pages for mint's probe options (see the Containerfile); SIGTERM ends it (PID 1).

Each page that needs a probe option reads a file only that option's request reaches, so a slim image made
from a run without it lacks the file, and that page fails in it.
"""
import importlib
import os
import signal
import sys

from flask import Flask, Response, jsonify, request, send_file

app = Flask(__name__)
USER, PASSWORD = "admin", "s3cret"


def read(path):
    with open(path) as f:
        return f.read()


def page(name):
    """The module of a page only one kind of probe reaches (/app/pages/NAME.py), imported when it is asked
    for."""
    return importlib.import_module("pages." + name)


@app.get("/")
def index():
    # The crawl's start: /catalog is linked from here only; /archive is in sitemap.xml only.
    return ('<!doctype html><title>probes</title><p>The probes sample: <a href="catalog#top">the catalog</a>,'
            ' <a href="https://probes.example/elsewhere">elsewhere</a>.</p>')


@app.get("/catalog")
def catalog():
    return page("catalog").render()


@app.get("/archive")
def archive():
    return page("archive").render()


@app.get("/robots.txt")
def robots():
    return send_file("/app/site/robots.txt", mimetype="text/plain")


@app.get("/sitemap.xml")
def sitemap():
    return send_file("/app/site/sitemap.xml", mimetype="application/xml")


@app.get("/openapi.json")
def openapi():
    return send_file("/app/openapi.json", mimetype="application/json")


@app.get("/api/items/<int:item_id>")
def item(item_id):
    return jsonify(page("items").get(item_id))


@app.post("/api/orders")
def orders():
    order = page("orders").create(request.get_json(silent=True))
    if order is None:
        return Response("not an order\n", 400)
    return jsonify(order), 201


@app.get("/api/search")
def search():
    q = request.args.get("q")
    if not q:
        return Response("no q\n", 400)
    return jsonify(page("search").find(q))


@app.get("/private")
def private():
    auth = request.authorization
    if auth is None or auth.username != USER or auth.password != PASSWORD:
        return Response("who are you?\n", 401, {"WWW-Authenticate": 'Basic realm="probes"'})
    return read("/app/private/secret.txt")


@app.get("/fail")
def fail():
    return Response("failing on purpose\n", 500)


@app.post("/upload")
def upload():
    f = request.files.get("file")
    if f is None:
        return Response("no file in the form\n", 400)
    data = f.read()
    return jsonify(name=f.filename, size=len(data), note=read("/app/private/upload.txt").strip())


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
