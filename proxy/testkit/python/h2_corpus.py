#!/usr/bin/env python3
"""Malformed HTTP/2 requests, frame by frame, against an h2c server with
prior knowledge (proxy/tests/it/http2_conformance.rs drives it against
rauta). Each case opens its own connection, sends the connection preface,
an empty SETTINGS and the case's frames (built raw with hpack and
hyperframe, which validate nothing; the frames of a case leave in one
write unless it pauses), then reports how the server reacted on stream 1. After each case a valid GET on a fresh connection checks that
the server still answers.

    h2_corpus.py --port PORT [--timeout S] [--only CASE,...] [--list]

Every case sends to `/corpus/<case>` (or a variant), so a backend can
tell which case's request reached it. One line per case on stdout, tab
separated:

    <case> <TAB> <expect> <TAB> <reaction> <TAB> <after>

- expect: `reject` (the request is malformed) or `serve` (a control case
  that must be answered);
- reaction: `rst:<ERROR>` (RST_STREAM on stream 1), `goaway:<ERROR>`,
  `status:<code>` (a response HEADERS on stream 1), `eof` (closed
  without either) or `timeout`;
- after: the status of the valid GET on a fresh connection afterwards, or
  `none` when it failed.
"""

import argparse
import socket
import sys
import time

import hpack
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
AUTHORITY = b"corpus.example"

ERRORS = {
    0x0: "NO_ERROR",
    0x1: "PROTOCOL_ERROR",
    0x2: "INTERNAL_ERROR",
    0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT",
    0x5: "STREAM_CLOSED",
    0x6: "FRAME_SIZE_ERROR",
    0x7: "REFUSED_STREAM",
    0x8: "CANCEL",
    0x9: "COMPRESSION_ERROR",
    0xA: "CONNECT_ERROR",
    0xB: "ENHANCE_YOUR_CALM",
    0xC: "INADEQUATE_SECURITY",
    0xD: "HTTP_1_1_REQUIRED",
}


def b(s):
    return s if isinstance(s, bytes) else s.encode()


def base(case, method=b"GET", path=None):
    """The usual pseudo-header fields, in order."""
    path = path if path is not None else b"/corpus/" + b(case)
    return [
        (b":method", b(method)),
        (b":scheme", b"http"),
        (b":path", b(path)),
        (b":authority", AUTHORITY),
    ]


def without(fields, name):
    return [(k, v) for (k, v) in fields if k != name]


class Frames:
    """Builds a case's frames with one HPACK encoder (its dynamic table
    must match what the server decodes)."""

    def __init__(self):
        self.enc = hpack.Encoder()
        self.out = []

    def block(self, fields):
        # No Huffman and no indexing surprises: literal bytes as given.
        return self.enc.encode([(b(k), b(v)) for (k, v) in fields], huffman=False)

    def headers(self, fields, end_stream, stream=1):
        f = HeadersFrame(stream, data=self.block(fields))
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        self.out.append(f.serialize())
        return self

    def data(self, payload, end_stream, stream=1):
        f = DataFrame(stream, data=b(payload))
        if end_stream:
            f.flags.add("END_STREAM")
        self.out.append(f.serialize())
        return self

    def pause(self, seconds=0.3):
        """Sends what came before, then waits before the rest."""
        self.out.append(float(seconds))
        return self

    def writes(self):
        """The bytes to send, as (bytes, pause after) writes."""
        writes, chunk = [], b""
        for part in self.out:
            if isinstance(part, float):
                writes.append((chunk, part))
                chunk = b""
            else:
                chunk += part
        writes.append((chunk, 0.0))
        return writes


def get(case, *extra):
    return Frames().headers(base(case) + list(extra), True)


def post(case, fields_extra, chunks):
    """A POST with `fields_extra`, then DATA `chunks` (the last ends the stream)."""
    f = Frames().headers(base(case, b"POST") + list(fields_extra), not chunks)
    for i, c in enumerate(chunks):
        f.data(c, i == len(chunks) - 1)
    return f


def case_list():
    """(name, expect, frames builder) for every case."""
    c = []

    def add(name, expect, build):
        c.append((name, expect, build))

    # Controls: well-formed requests that must be served.
    add("valid-get", "serve", lambda n: get(n))
    add("valid-post-length", "serve", lambda n: post(n, [(b"content-length", b"5")], [b"hello"]))
    add("valid-post-no-length", "serve", lambda n: post(n, [], [b"hel", b"lo"]))
    add("valid-te-trailers", "serve", lambda n: get(n, (b"te", b"trailers")))
    add(
        "valid-trailers",
        "serve",
        lambda n: Frames()
        .headers(base(n, b"POST"), False)
        .data(b"hi", False)
        .headers([(b"x-checksum", b"1")], True),
    )
    # The DATA that completes content-length, with the stream ended later.
    add(
        "valid-length-end-later",
        "serve",
        lambda n: Frames()
        .headers(base(n, b"POST") + [(b"content-length", b"2")], False)
        .data(b"hi", False)
        .pause()
        .data(b"", True),
    )
    add(
        "valid-length-trailers-later",
        "serve",
        lambda n: Frames()
        .headers(base(n, b"POST") + [(b"content-length", b"2")], False)
        .data(b"hi", False)
        .pause()
        .headers([(b"x-checksum", b"1")], True),
    )
    # Connection-specific fields (RFC 9113 §8.2.2).
    add("connection", "reject", lambda n: get(n, (b"connection", b"close")))
    add("keep-alive", "reject", lambda n: get(n, (b"keep-alive", b"timeout=5")))
    add("proxy-connection", "reject", lambda n: get(n, (b"proxy-connection", b"keep-alive")))
    add("upgrade", "reject", lambda n: get(n, (b"upgrade", b"websocket")))
    add(
        "transfer-encoding",
        "reject",
        lambda n: post(n, [(b"transfer-encoding", b"chunked")], [b"5\r\nhello\r\n0\r\n\r\n"]),
    )
    add("te-gzip", "reject", lambda n: get(n, (b"te", b"gzip")))
    add("te-trailers-and-gzip", "reject", lambda n: get(n, (b"te", b"trailers, gzip")))
    # Field names (§8.2.1) and pseudo-header fields (§8.3).
    add("uppercase-name", "reject", lambda n: get(n, (b"X-Upper", b"1")))
    add("name-with-space", "reject", lambda n: get(n, (b"x upper", b"1")))
    add("name-with-colon", "reject", lambda n: get(n, (b"x:upper", b"1")))
    add(
        "pseudo-after-regular",
        "reject",
        lambda n: Frames().headers(
            without(base(n), b":path") + [(b"x-a", b"1"), (b":path", b"/corpus/" + b(n))], True
        ),
    )
    add("duplicate-path", "reject", lambda n: get(n, (b":path", b"/corpus/" + b(n) + b"/2")))
    add("duplicate-method", "reject", lambda n: get(n, (b":method", b"POST")))
    add("missing-method", "reject", lambda n: Frames().headers(without(base(n), b":method"), True))
    add("missing-scheme", "reject", lambda n: Frames().headers(without(base(n), b":scheme"), True))
    add("missing-path", "reject", lambda n: Frames().headers(without(base(n), b":path"), True))
    add("empty-path", "reject", lambda n: Frames().headers(base(n, path=b""), True))
    add("path-without-slash", "reject", lambda n: Frames().headers(base(n, path=b"corpus/" + b(n)), True))
    add(
        "path-absolute-form",
        "reject",
        lambda n: Frames().headers(base(n, path=b"http://other.example/corpus/" + b(n)), True),
    )
    add("path-asterisk-get", "reject", lambda n: Frames().headers(base(n, path=b"*"), True))
    add("unknown-pseudo", "reject", lambda n: get(n, (b":foo", b"bar")))
    add(
        "status-in-request",
        "reject",
        lambda n: Frames().headers(base(n) + [(b":status", b"200")], True),
    )
    add(
        "authority-userinfo",
        "reject",
        lambda n: Frames().headers(
            without(base(n), b":authority") + [(b":authority", b"user@" + AUTHORITY)], True
        ),
    )
    # Field values (§8.2.1).
    add("value-cr", "reject", lambda n: get(n, (b"x-a", b"a\rb")))
    add("value-lf", "reject", lambda n: get(n, (b"x-a", b"a\nb")))
    add("value-crlf-injection", "reject", lambda n: get(n, (b"x-a", b"a\r\nx-injected: 1")))
    add("value-nul", "reject", lambda n: get(n, (b"x-a", b"a\x00b")))
    add("value-leading-space", "reject", lambda n: get(n, (b"x-a", b" a")))
    add("value-trailing-space", "reject", lambda n: get(n, (b"x-a", b"a ")))
    add("value-trailing-tab", "reject", lambda n: get(n, (b"x-a", b"a\t")))
    add("host-differs", "reject", lambda n: get(n, (b"host", b"other.example")))
    add(
        "host-twice",
        "reject",
        lambda n: get(n, (b"host", AUTHORITY), (b"host", b"other.example")),
    )
    # Content-length against DATA (§8.1.1).
    add("length-more-one-frame", "reject", lambda n: post(n, [(b"content-length", b"3")], [b"hello"]))
    add(
        "length-more-two-frames",
        "reject",
        lambda n: post(n, [(b"content-length", b"3")], [b"abc", b"de"]),
    )
    add(
        "length-more-later",
        "reject",
        lambda n: Frames()
        .headers(base(n, b"POST") + [(b"content-length", b"3")], False)
        .data(b"abc", False)
        .pause()
        .data(b"de", True),
    )
    add("length-less", "reject", lambda n: post(n, [(b"content-length", b"10")], [b"hello"]))
    add(
        "length-without-data",
        "reject",
        lambda n: Frames().headers(base(n, b"POST") + [(b"content-length", b"5")], True),
    )
    add(
        "length-two-different",
        "reject",
        lambda n: post(n, [(b"content-length", b"5"), (b"content-length", b"6")], [b"hello"]),
    )
    add("length-list", "reject", lambda n: post(n, [(b"content-length", b"5, 5")], [b"hello"]))
    add("length-not-a-number", "reject", lambda n: post(n, [(b"content-length", b"five")], [b"hello"]))
    # CONNECT (§8.5): not proxied.
    add(
        "connect",
        "reject",
        lambda n: Frames().headers([(b":method", b"CONNECT"), (b":authority", AUTHORITY + b":443")], True),
    )
    add("connect-with-path", "reject", lambda n: Frames().headers(base(n, b"CONNECT"), True))
    # Trailers (§8.1): no pseudo-header fields; they must end the stream.
    add(
        "trailer-pseudo",
        "reject",
        lambda n: Frames()
        .headers(base(n, b"POST"), False)
        .data(b"hi", False)
        .headers([(b":path", b"/corpus/" + b(n) + b"/trailer")], True),
    )
    add(
        "trailer-without-end-stream",
        "reject",
        lambda n: Frames()
        .headers(base(n, b"POST"), False)
        .data(b"hi", False)
        .headers([(b"x-checksum", b"1")], False),
    )
    # Frames after the client ended the stream (§5.1).
    add("data-after-end-stream", "reject", lambda n: get(n).data(b"x", True))
    add("headers-after-end-stream", "reject", lambda n: get(n).headers(base(n + "/2"), True))
    return c


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(sock):
    head = recv_exact(sock, 9)
    if head is None:
        return None
    frame, length = Frame.parse_frame_header(memoryview(head))
    body = recv_exact(sock, length) if length else b""
    if body is None:
        return None
    frame.parse_body(memoryview(body))
    return frame


def exchange(port, frames, timeout, stream=1):
    """Sends the preface, SETTINGS and `frames`; returns the reaction on
    `stream` (see the module docs)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    dec = hpack.Decoder()
    block = None
    try:
        sock.sendall(PREFACE + SettingsFrame(0).serialize())
        for chunk, pause in frames.writes():
            try:
                sock.sendall(chunk)
            except OSError:
                break  # closed early: what it sent says why
            time.sleep(pause)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            sock.settimeout(left)
            try:
                frame = read_frame(sock)
            except socket.timeout:
                return "timeout"
            except ConnectionResetError:
                return "eof"
            if frame is None:
                return "eof"
            if isinstance(frame, SettingsFrame) and "ACK" not in frame.flags:
                ack = SettingsFrame(0)
                ack.flags.add("ACK")
                sock.sendall(ack.serialize())
            elif isinstance(frame, GoAwayFrame):
                return "goaway:" + ERRORS.get(frame.error_code, hex(frame.error_code))
            elif isinstance(frame, RstStreamFrame) and frame.stream_id == stream:
                return "rst:" + ERRORS.get(frame.error_code, hex(frame.error_code))
            elif isinstance(frame, (HeadersFrame, ContinuationFrame)):
                block = (block or b"") + frame.data
                if "END_HEADERS" in frame.flags:
                    fields = dec.decode(block, raw=True)
                    block = None
                    if frame.stream_id == stream:
                        status = dict(fields).get(b":status", b"?").decode()
                        if not status.startswith("1"):
                            return "status:" + status
            elif isinstance(frame, DataFrame) and frame.data:
                # Keep the server's windows open for long answers.
                sock.sendall(
                    WindowUpdateFrame(0, window_increment=len(frame.data)).serialize()
                    + WindowUpdateFrame(frame.stream_id, window_increment=len(frame.data)).serialize()
                )
    finally:
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--only", default="")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    only = set(filter(None, args.only.split(",")))
    for name, expect, build in case_list():
        if only and name not in only:
            continue
        if args.list:
            print(f"{name}\t{expect}")
            continue
        try:
            reaction = exchange(args.port, build(name), args.timeout)
        except OSError as e:
            reaction = "error:" + type(e).__name__
        try:
            after = exchange(args.port, get(name + "/after"), args.timeout)
            after = after.split(":", 1)[1] if after.startswith("status:") else "none"
        except OSError:
            after = "none"
        print(f"{name}\t{expect}\t{reaction}\t{after}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
