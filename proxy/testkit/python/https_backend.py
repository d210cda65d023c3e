#!/usr/bin/env python3
"""An HTTPS (HTTP/1.1 over TLS) backend for rauta's tests that reports what
its client did on the TLS layer. Standard library only.

  https_backend.py --cert FILE --key FILE [--client-ca FILE] [--ignore-stdin]

Listens on 127.0.0.1:<ephemeral> with TLS (ALPN `http/1.1` offered; with
--client-ca a client certificate signed by that CA is required), and on a
second ephemeral port with plain HTTP for statistics only. Prints
`ready <tls-port> <stats-port>` once both listen; exits when stdin reaches
EOF (so a dead test leaves no orphan) unless --ignore-stdin.

Every request on the TLS port (any method; the body is read, by
Content-Length or chunked, and counted) is answered 200 with a JSON body:

  {"method", "path", "headers": {lowercased name: value, last wins},
   "sni": str|null, "alpn": str|null, "client_cert_cn": str|null,
   "tls_version": "TLSv1.3", "body_bytes": n,
   "connection_requests": requests this TLS connection has served, this one
   included (1, 2, ... on a kept-alive connection)}

except `GET /__stats`, which (on either port) answers

  {"handshake_failures": n, "connections": n, "accepted": n, "requests": n}

connections: TLS handshakes completed; accepted: TCP connections accepted on
the TLS port (connections + handshake_failures + any still handshaking);
requests: requests answered on the TLS port, /__stats excluded. Handshake
errors are also printed to stderr. A TCP connection closed before a
ClientHello (a port probe) counts as a handshake failure too.

Python's ssl: the sni_callback runs for every handshake, with None when the
client sent no SNI. A client offering ALPN without `http/1.1` (say only
`h2`) still completes the handshake, with no ALPN selected.
"""

import argparse
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANDSHAKE_TIMEOUT = 10.0

STATS = {"handshake_failures": 0, "connections": 0, "accepted": 0, "requests": 0}
STATS_LOCK = threading.Lock()


def count(key):
    with STATS_LOCK:
        STATS[key] += 1


def stats_json():
    with STATS_LOCK:
        return json.dumps(STATS, sort_keys=True).encode()


def log(message):
    print("https_backend: %s" % message, file=sys.stderr, flush=True)


def common_name(cert):
    """The subject CN of a decoded getpeercert() dict, or None."""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return value
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "rauta-https-backend"

    def setup(self):
        super().setup()
        self.served = 0  # requests on this connection

    def log_message(self, format, *args):
        pass  # quiet: stderr is for errors

    def __getattr__(self, name):
        # Any method: BaseHTTPRequestHandler looks up do_<METHOD>.
        if name.startswith("do_"):
            return self.answer
        raise AttributeError(name)

    def read_body(self):
        """Reads the request body; returns its length."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            total = 0
            while True:
                size_line = self.rfile.readline(65537)
                if not size_line:
                    raise ConnectionError("EOF in chunk size")
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    # Trailers up to the empty line.
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return total
                left = size
                while left:
                    piece = self.rfile.read(min(left, 65536))
                    if not piece:
                        raise ConnectionError("EOF in chunk")
                    left -= len(piece)
                total += size
                self.rfile.readline(65537)  # CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        left = length
        while left:
            piece = self.rfile.read(min(left, 65536))
            if not piece:
                raise ConnectionError("EOF in body")
            left -= len(piece)
        return length

    def send_json(self, body):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def answer(self):
        body_bytes = self.read_body()
        if self.command == "GET" and self.path == "/__stats":
            self.send_json(stats_json())
            return
        self.served += 1
        count("requests")
        conn = self.connection
        headers = {}
        for name, value in self.headers.items():
            headers[name.lower()] = value
        report = {
            "method": self.command,
            "path": self.path,
            "headers": headers,
            "sni": getattr(conn, "rauta_sni", None),
            "alpn": conn.selected_alpn_protocol(),
            "client_cert_cn": common_name(conn.getpeercert()),
            "tls_version": conn.version(),
            "body_bytes": body_bytes,
            "connection_requests": self.served,
        }
        self.send_json(json.dumps(report, sort_keys=True).encode())


class StatsHandler(Handler):
    def answer(self):
        self.read_body()
        self.send_json(stats_json())


class TlsServer(ThreadingHTTPServer):
    """Accepts plain TCP and runs the TLS handshake in the connection's own
    thread, so a slow or failing handshake neither blocks accepting nor goes
    unnoticed (socketserver drops errors raised while accepting)."""

    daemon_threads = True

    def __init__(self, address, context):
        self.context = context
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        count("accepted")
        tls = self.context.wrap_socket(
            request, server_side=True, do_handshake_on_connect=False
        )
        try:
            tls.rauta_sni = None  # stays None when no SNI was sent
            tls.settimeout(HANDSHAKE_TIMEOUT)
            try:
                tls.do_handshake()
            except (OSError, ValueError) as e:
                count("handshake_failures")
                log("TLS handshake with %s:%d failed: %r" % (*client_address, e))
                return
            count("connections")
            tls.settimeout(None)
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            tls.close()

    def handle_error(self, request, client_address):
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, ssl.SSLError, TimeoutError)):
            # A client gone mid-request: one line, no traceback.
            log("connection from %s:%d ended: %r" % (*client_address, error))
            return
        log("error on a connection from %s:%d:" % client_address)
        super().handle_error(request, client_address)


def sni_callback(tls, server_name, _context):
    # `tls` is the SSLSocket being handshaken; server_name is None when the
    # client sent no SNI. Returning None continues the handshake.
    tls.rauta_sni = server_name


def context(args):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.sni_callback = sni_callback
    if args.client_ca:
        ctx.load_verify_locations(cafile=args.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--client-ca")
    parser.add_argument("--ignore-stdin", action="store_true")
    args = parser.parse_args()

    tls_server = TlsServer(("127.0.0.1", 0), context(args))
    stats_server = ThreadingHTTPServer(("127.0.0.1", 0), StatsHandler)
    stats_server.daemon_threads = True
    for server in (tls_server, stats_server):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(
        "ready %d %d" % (tls_server.server_address[1], stats_server.server_address[1]),
        flush=True,
    )
    if args.ignore_stdin:
        threading.Event().wait()
    while sys.stdin.buffer.read(4096):
        pass
    log("stdin closed, stopping")
    sys.stderr.flush()
    os._exit(0)  # daemon threads may be mid-request: no clean-up wait


if __name__ == "__main__":
    main()
