#!/usr/bin/env python3
"""A webhook receiver for the demo: prints every request it gets (the
signature headers and the body) and answers 204.  Listens on 127.0.0.1 only.

    demo/receiver.py PORT [BROKEN_FILE]

With BROKEN_FILE (demo/walkthrough): while that file exists, requests to
/hooks/shipping get a 500 with a JSON body that says why, as a broken
endpoint would; once it is removed, they get 204 like the others.
"""
import http.server
import json
import os
import sys

BROKEN_FILE = sys.argv[2] if len(sys.argv) > 2 else None


class Receiver(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _answer(self, status, body=b""):
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        self._answer(200)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        shown = ("webhook-id", "webhook-timestamp", "webhook-signature")
        lines = [f"POST {self.path}"]
        lines += [f"  {name}: {self.headers.get(name)}" for name in shown]
        lines.append(f"  body: {body.decode()}")
        print("\n".join(lines), flush=True)   # one write: threads don't interleave
        if (BROKEN_FILE and self.path.startswith("/hooks/shipping")
                and os.path.exists(BROKEN_FILE)):
            self._answer(500, json.dumps({"error": "label printer offline"}).encode())
        else:
            self._answer(204)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    # the default backlog of 5 drops connection bursts: clients retry after 1 s
    request_queue_size = 128
    daemon_threads = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", int(sys.argv[1])), Receiver)
    server.serve_forever()
