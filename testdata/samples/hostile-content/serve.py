"""The hostile-content image's app: 200 "ok" to every GET on :8080, exit 0 on SIGTERM. It touches nothing the
image made hostile: no name service (HTTPServer's own server_bind resolves the host name through
/etc/nsswitch.conf, a fifo here, and would block), no user database, no library outside the default paths."""
import os
import signal
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    timeout = 10

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *a):
        pass


class Server(HTTPServer):
    allow_reuse_address = True

    def server_bind(self):
        self.socket.bind(self.server_address)
        self.server_name, self.server_port = "localhost", self.server_address[1]


signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
print("hostile-content: serving on :8080", flush=True)
Server(("0.0.0.0", 8080), Handler).serve_forever()
