#!/usr/bin/env python3
"""Drives one HTTP/2 connection (prior knowledge) with the h2 package, for
what a client does to a whole connection rather than to one request, and
prints one JSON object with what the server did.

  h2_conn.py idle ADDR HOST WAIT_S
      one GET /, then stays quiet; reports the GOAWAY, PINGs answered and
      when the server closed.
  h2_conn.py silent ADDR HOST WAIT_S
      one GET /, then reads nothing and answers nothing (a vanished peer)
      for WAIT_S; reports whether the server had closed by then.
  h2_conn.py rapid-reset ADDR HOST N PATH [GAP_MS]
      N streams, each GET PATH then RST_STREAM CANCEL GAP_MS later (after
      the server accepted it); reports the GOAWAY's error code.
"""

import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions


def connect(addr):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def headers(host, path):
    return [(":method", "GET"), (":scheme", "http"), (":authority", host), (":path", path)]


class Seen:
    def __init__(self):
        self.goaway = None
        self.pings = 0
        self.responses = 0
        self.resets = 0
        self.closed_after = None

    def take(self, events, started):
        for e in events:
            if isinstance(e, h2.events.ConnectionTerminated):
                self.goaway = {"error_code": int(e.error_code), "at_s": round(time.time() - started, 2)}
            elif isinstance(e, h2.events.PingReceived):
                self.pings += 1
            elif isinstance(e, h2.events.ResponseReceived):
                self.responses += 1
            elif isinstance(e, h2.events.StreamReset):
                self.resets += 1


def pump(sock, conn, seen, started, until):
    """Reads and answers frames until `until` (a time) or the close."""
    while time.time() < until:
        sock.settimeout(max(0.01, min(0.2, until - time.time())))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            data = b""
        if not data:
            seen.closed_after = round(time.time() - started, 2)
            return False
        try:
            seen.take(conn.receive_data(data), started)
        except h2.exceptions.ProtocolError as e:
            print("protocol error: %s" % e, file=sys.stderr)
        out = conn.data_to_send()
        if out:
            try:
                sock.sendall(out)
            except OSError:
                pass
    return True


def idle(addr, host, wait_s):
    started = time.time()
    sock, conn = connect(addr)
    seen = Seen()
    conn.send_headers(1, headers(host, "/"), end_stream=True)
    sock.sendall(conn.data_to_send())
    pump(sock, conn, seen, started, started + float(wait_s))
    return vars(seen)


def silent(addr, host, wait_s):
    sock, conn = connect(addr)
    conn.send_headers(1, headers(host, "/"), end_stream=True)
    sock.sendall(conn.data_to_send())
    time.sleep(float(wait_s))
    # Whatever the server sent meanwhile is buffered; a close follows it.
    sock.settimeout(1)
    closed = False
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                closed = True
                break
    except socket.timeout:
        pass
    except OSError:
        closed = True
    return {"closed": closed}


def rapid_reset(addr, host, n, path, gap_ms="20"):
    started = time.time()
    sock, conn = connect(addr)
    seen = Seen()
    stream = 1
    for _ in range(int(n)):
        if seen.goaway or seen.closed_after is not None:
            break
        try:
            conn.send_headers(stream, headers(host, path), end_stream=True)
            sock.sendall(conn.data_to_send())
            if not pump(sock, conn, seen, started, time.time() + int(gap_ms) / 1000):
                break
            conn.reset_stream(stream, error_code=h2.errors.ErrorCodes.CANCEL)
            sock.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError) as e:
            print("stopped: %s" % e, file=sys.stderr)
            break
        stream += 2
    pump(sock, conn, seen, started, time.time() + 3)
    result = vars(seen)
    result["streams_sent"] = (stream + 1) // 2
    return result


def main():
    scenario, args = sys.argv[1], sys.argv[2:]
    run = {"idle": idle, "silent": silent, "rapid-reset": rapid_reset}[scenario]
    print(json.dumps(run(*args), sort_keys=True))


if __name__ == "__main__":
    main()
