"""A backend for the KIngress tests, run as ``python3 -c <this file's text> NAME PORT [HOST]`` in a Pod.

Answers every request with JSON ``{"name", "path", "headers"}``. Requests carrying ``K-Network-Probe: probe``
are answered as Knative's queue-proxy answers them (``knative.dev/networking`` ``pkg/http/probe``): 200 with
the request's ``K-Network-Hash`` echoed, 400 without one; ``GET /probes`` returns how many it got and the last
hash. Standard library only (the Pod's image is plain Python).
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NAME = sys.argv[1]
PORT = int(sys.argv[2])
HOST = sys.argv[3] if len(sys.argv) > 3 else "0.0.0.0"
PROBES = {"count": 0, "last_hash": None}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        return

    def send(self, code, payload, extra=None):
        body = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.headers.get("K-Network-Probe") == "probe":
            digest = self.headers.get("K-Network-Hash")
            if not digest:
                return self.send(400, {"error": "a probe request must contain a non-empty K-Network-Hash"})
            with LOCK:
                PROBES["count"] += 1
                PROBES["last_hash"] = digest
            return self.send(200, {"name": NAME}, {"K-Network-Hash": digest})
        if self.path == "/probes":
            with LOCK:
                return self.send(200, dict(PROBES))
        self.send(200, {"name": NAME, "path": self.path, "headers": dict(self.headers.items())})

    do_POST = do_GET


ThreadingHTTPServer((HOST, PORT), Handler).serve_forever()
