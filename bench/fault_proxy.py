"""A fault-injecting HTTP proxy between the dashboard and a simulator, both on 127.0.0.1.

    .venv/bin/python bench/fault_proxy.py --upstream-port 8001 --rate 0.15 --seed 7

It forwards every request to 127.0.0.1:<upstream-port> (never anywhere else) and, with
probability --rate, breaks it the way a flaky network or load balancer does:

- on a GET (status reads, lists, content downloads):
  truncate  the body cut short and the connection closed cleanly, WITHOUT Content-Length, so
            the framing says the answer is whole;
  reset     the headers (with Content-Length) and part of the body, then a TCP reset;
  stall     the headers and part of the body, then nothing for --stall-seconds, then a close;
- on a POST that creates a job (create, remix), the request still reaches the simulator:
  post_5xx  the job is created upstream, the client gets a 502 page or a 500 envelope;
  post_drop the job is created upstream, the connection is closed with no answer;
  strip_key the Idempotency-Key header is removed before forwarding.

--kinds narrows the list. The draws come from one random.Random(--seed) in request order. It
is bounded: it stops by itself after --max-seconds or --max-requests, every stall has a fixed
length and every upstream call a timeout. GET /_proxy/stats (never faulted) returns the
counts as JSON; POST /_proxy/config {"rate": 0} changes the rate while it runs. The first
line it prints is `fault proxy: http://127.0.0.1:<port> -> http://127.0.0.1:<upstream>`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM_HOST = "127.0.0.1"  # the only host this proxy ever connects to
GET_FAULTS = ("truncate", "reset", "stall")
POST_FAULTS = ("post_5xx", "post_drop", "strip_key")
CREATES = re.compile(r"^/v1/videos(/[^/]+/remix)?/?$")
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
CHUNK = 64 * 1024
MAX_BODY = 64 * 1024 * 1024
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
ERROR_500 = json.dumps(
    {"error": {"message": "Internal server error", "type": "server_error", "param": None}}
).encode()


class Faults:
    """The seeded draws and the counts, shared by every handler thread."""

    def __init__(
        self, rate: float, seed: int, stall_seconds: float, kinds: frozenset[str] | None = None
    ) -> None:
        self.rate = rate
        self.kinds = kinds or frozenset(GET_FAULTS + POST_FAULTS)
        self.stall_seconds = stall_seconds
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def draw(self, method: str, path: str) -> tuple[str | None, float]:
        """The fault for this request (or None) and where to cut a body (a fraction)."""
        kinds: tuple[str, ...] = ()
        if method == "POST" and CREATES.match(path.split("?", 1)[0]):
            kinds = POST_FAULTS
        elif method == "GET":
            kinds = GET_FAULTS
        kinds = tuple(kind for kind in kinds if kind in self.kinds)
        with self.lock:  # two draws per request, whatever it is: the sequence is the seed's
            self.counts["requests"] += 1
            hit, cut = self.rng.random(), 0.1 + 0.8 * self.rng.random()
            if not kinds or hit >= self.rate:
                return None, cut
            kind = kinds[int(hit / self.rate * len(kinds)) % len(kinds)]
            self.counts[kind] += 1
            n = self.counts["requests"]
        # One line per fault, for reading a soak's failures against the dashboard's logs.
        print(f"{time.strftime('%H:%M:%S')} #{n} {kind} cut={cut:.2f} {method} {path}", flush=True)
        return kind, cut

    def snapshot(self) -> dict[str, object]:
        with self.lock:
            return {"rate": self.rate, **self.counts}


class ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, port: int, upstream_port: int, faults: Faults, timeout: float) -> None:
        self.upstream_port = upstream_port
        self.faults = faults
        self.upstream_timeout = timeout
        super().__init__((UPSTREAM_HOST, port), Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections end eventually
    disable_nagle_algorithm = True
    server: ProxyServer

    def log_message(self, format: str, *args: object) -> None:
        pass  # the counts are the record; a line per request would swamp the log

    def do_GET(self) -> None:
        self.relay()

    def do_POST(self) -> None:
        self.relay()

    def do_DELETE(self) -> None:
        self.relay()

    def do_HEAD(self) -> None:
        self.relay()

    def relay(self) -> None:
        body = self.read_body()
        if self.path.startswith("/_proxy/"):
            self.control(body)
            return
        faults = self.server.faults
        fault, cut = faults.draw(self.command, self.path)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        if fault == "strip_key":
            headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}
        upstream = http.client.HTTPConnection(
            UPSTREAM_HOST, self.server.upstream_port, timeout=self.server.upstream_timeout
        )
        try:
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            if fault in ("post_5xx", "post_drop"):
                answer.read()  # the job exists upstream now
                self.break_answer(fault, cut)
            else:  # strip_key is done to the request: its answer goes back whole
                self.forward(answer, fault if fault in GET_FAULTS else None, cut)
        except (OSError, http.client.HTTPException):
            self.close_connection = True  # upstream stalled or dropped: so does the answer
            self.abort()
        finally:
            upstream.close()

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts: list[bytes] = []
            for _ in range(100_000):  # bounded, like everything here
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(min(size, MAX_BODY)))
                self.rfile.readline(16)
            return b"".join(parts)
        length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY)
        return self.rfile.read(length) if length > 0 else b""

    def break_answer(self, fault: str, cut: float) -> None:
        self.close_connection = True
        if fault == "post_drop":
            self.abort()
            return
        status, body, kind = (
            (502, HTML_502, "text/html") if cut < 0.5 else (500, ERROR_500, "application/json")
        )
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def forward(self, answer: http.client.HTTPResponse, fault: str | None, cut: float) -> None:
        length = answer.getheader("Content-Length")
        total = int(length) if length is not None and length.isdigit() else None
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP and not (
                name.lower() == "content-length" and (fault == "truncate" or total is None)
            ):
                self.send_header(name, value)
        if fault is not None or total is None:
            # Without a length the close is what ends the body, as it is for the truncation.
            self.close_connection = True
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command == "HEAD":
            return
        stop_at = None if fault is None else int((total or 0) * cut)
        sent = 0
        for _ in range(1_000_000):  # bounded: 64 GB at most
            chunk = answer.read(CHUNK)
            if not chunk:
                break
            if stop_at is not None and sent + len(chunk) >= stop_at:
                self.wfile.write(chunk[: max(stop_at - sent, 0)])
                self.wfile.flush()
                self.end_mid_body(fault)
                return
            self.wfile.write(chunk)
            sent += len(chunk)
        if stop_at is not None:  # a body too short to cut (e.g. empty): end it the same way
            self.end_mid_body(fault)

    def end_mid_body(self, fault: str | None) -> None:
        if fault == "stall":
            time.sleep(self.server.faults.stall_seconds)
        if fault == "reset":
            self.abort()

    def abort(self) -> None:
        """A TCP reset: SO_LINGER 0, then close."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def control(self, body: bytes) -> None:
        faults = self.server.faults
        if self.command == "POST" and self.path == "/_proxy/config":
            patch = json.loads(body or b"{}")
            with faults.lock:
                faults.rate = float(patch.get("rate", faults.rate))
        payload = json.dumps(faults.snapshot()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--upstream-port", type=int, required=True, help="the simulator's port")
    p.add_argument("--port", type=int, default=0, help="where to listen (0: any free port)")
    p.add_argument("--rate", type=float, default=0.15, help="share of requests faulted")
    p.add_argument("--seed", type=int, default=1, help="seed of the fault draws")
    p.add_argument(
        "--kinds",
        default=",".join(GET_FAULTS + POST_FAULTS),
        help="comma list of the fault kinds to draw from (default: all)",
    )
    p.add_argument("--stall-seconds", type=float, default=5, help="how long a stall lasts")
    p.add_argument("--upstream-timeout", type=float, default=60, help="per upstream call")
    p.add_argument("--max-seconds", type=float, default=3600, help="stop after this long")
    p.add_argument("--max-requests", type=int, default=1_000_000, help="stop after this many")
    args = p.parse_args(argv)
    unknown = set(args.kinds.split(",")) - set(GET_FAULTS + POST_FAULTS)
    if unknown:
        p.error(f"unknown fault kinds {sorted(unknown)}")
    return args


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)  # leave the wait loop; the finally block shuts the server down


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kinds = frozenset(args.kinds.split(","))
    faults = Faults(args.rate, args.seed, min(args.stall_seconds, 120), kinds)
    server = ProxyServer(args.port, args.upstream_port, faults, args.upstream_timeout)
    port = server.server_address[1]
    print(
        f"fault proxy: http://{UPSTREAM_HOST}:{port} -> "
        f"http://{UPSTREAM_HOST}:{args.upstream_port} rate={args.rate} seed={args.seed}",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _stop)
    deadline = time.monotonic() + args.max_seconds
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    thread.start()
    try:
        while time.monotonic() < deadline and faults.counts["requests"] < args.max_requests:
            time.sleep(0.5)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    print(f"fault proxy stopped: {json.dumps(faults.snapshot())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
