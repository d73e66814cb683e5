"""The lines sample: GET / on port 8080, a line protocol on port 7070 (see the Containerfile).

SIGTERM ends it (PID 1).
"""
import http.server
import signal
import socketserver
import sys
import threading


class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"lines: send 'HSV r g b' to port 7070\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Lines(socketserver.StreamRequestHandler):
    """One answer a line: `HSV r g b` (each 0 to 1) gives `h s v`; anything else `ERR ...`."""

    def handle(self):
        import colorsys  # this protocol's code path only: the HTTP part never imports it

        for line in self.rfile:
            words = line.decode(errors="replace").split()
            try:
                if words[0] != "HSV" or len(words) != 4:
                    raise ValueError("want HSV r g b")
                h, s, v = colorsys.rgb_to_hsv(*(float(w) for w in words[1:]))
                answer = f"{h:.3f} {s:.3f} {v:.3f}"
            except (IndexError, ValueError) as e:
                answer = f"ERR {e}"
            self.wfile.write(answer.encode() + b"\n")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

if __name__ == "__main__":
    lines = Server(("0.0.0.0", 7070), Lines)
    threading.Thread(target=lines.serve_forever, daemon=True).start()
    Server(("0.0.0.0", 8080), Page).serve_forever()
