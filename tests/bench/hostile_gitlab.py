#!/usr/bin/env python3
"""A GitLab on loopback for the benchmark scripts (not part of `cargo test`):
a pipeline's jobs page made of N MiB of `{}`, a failed job whose trace
arrives two bytes at a time, every few seconds, for ever (tests/bench/
hostile.sh), or N failed jobs each serving the trace in FILE (tests/bench/
diagnose.sh).

    hostile_gitlab.py PORT_FILE empty-page MIB
    hostile_gitlab.py PORT_FILE dribble SECONDS_BETWEEN_CHUNKS
    hostile_gitlab.py PORT_FILE traces N PREFIX   (job i's trace is PREFIX.i)
"""
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port_file, mode, arg = sys.argv[1], sys.argv[2], sys.argv[3]
API = "/api/v4"
PIPELINE = f"{API}/projects/42/pipelines/1001"


def job(i, name, status):
    return {
        "id": i, "name": name, "stage": "test", "status": status, "ref": "main",
        "allow_failure": False, "failure_reason": "script_failure" if status == "failed" else None,
        "web_url": f"https://gitlab.example.com/g/p/-/jobs/{i}",
        "pipeline": {"id": 1001, "project_id": 42, "status": "failed"},
    }


if mode == "empty-page":
    n = int(float(arg) * (1 << 20))
    PAGE = ("[" + "{}," * (n // 3 - 1) + "{}]").encode()
elif mode == "traces":
    TRACES = [open(f"{sys.argv[4]}.{i}", "rb").read() for i in range(int(arg))]
    PAGE = json.dumps([job(5001 + i, f"test:shard {i + 1}", "failed") for i in range(int(arg))]).encode()
else:
    PAGE = json.dumps([job(5001, "test:dribble", "failed"), job(5002, "build", "success")]).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, body, ctype="application/json"):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == f"{PIPELINE}/jobs":
            return self.send(PAGE)
        if mode == "traces" and path.startswith(f"{API}/projects/42/jobs/") and path.endswith("/trace"):
            i = int(path.split("/")[-2]) - 5001
            return self.send(TRACES[i], "text/plain")
        if path == f"{API}/projects/42/jobs/5001/trace":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"Running with gitlab-runner 18.7.0\n$ ./run-tests.sh\n")
            self.wfile.flush()
            try:
                while True:
                    time.sleep(float(arg))
                    self.wfile.write(b"ab")
                    self.wfile.flush()
            except OSError:
                return
        if path == f"{API}/user":
            return self.send(b'{"id": 1, "username": "bench"}')
        # Everything else (bridges, history, ...) is an empty list.
        return self.send(b"[]")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(port_file, "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
