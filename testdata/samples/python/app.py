"""A small flask app: GET / answers a JSON body; SIGTERM ends it (it runs as PID 1)."""
import os
import signal
import sys

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/")
def index():
    return jsonify(app="python", status="ok")


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

if __name__ == "__main__":
    app.run(host="0.0.0.0", port=int(os.environ.get("PORT", "8080")))
