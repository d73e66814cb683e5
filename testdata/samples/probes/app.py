"""The probes sample: pages for mint's probe options (see the Containerfile); SIGTERM ends it (PID 1).

Each page that needs a probe option reads a file only that option's request reaches, so a slim image made
from a run without it lacks the file, and that page fails in it.
"""
import os
import signal
import sys

from flask import Flask, Response, jsonify, request

app = Flask(__name__)
USER, PASSWORD = "admin", "s3cret"


def read(path):
    with open(path) as f:
        return f.read()


@app.get("/")
def index():
    return jsonify(app="probes", status="ok")


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
