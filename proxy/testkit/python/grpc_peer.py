#!/usr/bin/env python3
"""A real gRPC server and client (grpcio) for rauta's tests, with raw-bytes
messages so no generated code is needed. Service `rauta.test.Echo`:

  Unary         echoes; `status:N:msg` aborts with code N, `sleep:MS` sleeps first
  ServerStream  `n[:size]` -> n messages of size (16) bytes, each `<i>:` + a-z...
  ClientStream  -> `count=<m> bytes=<b>`
  Bidi          echoes each message as it arrives
  Cancelled     like ServerStream; a test cancels it and checks Stats
  Stats         -> JSON {"calls": .., "cancelled": ..} over all calls but Stats

Every call but Stats sends initial metadata `x-echo-header: hi` and
trailing metadata `x-echo-trailer: done` (also on abort).

  grpc_peer.py serve [--port 0] [--ignore-stdin]
      [--tls-cert FILE --tls-key FILE [--client-ca FILE]]
      prints `ready <port>`; exits when stdin reaches EOF (so a dead test
      leaves no orphan) unless --ignore-stdin. With --tls-cert/--tls-key it
      serves TLS (ALPN h2) with that chain and key; with --client-ca it also
      requires a client certificate signed by that CA.
  grpc_peer.py call HOST:PORT SCENARIO [ARGS...] [--authority NAME]
      [--timeout S] [--metadata KEY=VALUE ...]
      [--tls [--ca FILE] [--client-cert FILE --client-key FILE]]
      prints one JSON object and exits 0, even when the call failed. Every
      call carries the --metadata pairs (request headers). With
      --tls the server's certificate is verified against --ca (else the
      system roots) for --authority (else the target's host).
"""

import argparse
import hashlib
import json
import queue
import sys
import threading
import time
from concurrent import futures

import grpc

SERVICE = "rauta.test.Echo"
MAX_MESSAGE = 16 * 1024 * 1024
MESSAGE_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE),
    ("grpc.max_receive_message_length", MAX_MESSAGE),
]
HEADER = (("x-echo-header", "hi"),)
TRAILER = (("x-echo-trailer", "done"),)


def pattern(n):
    """The testkit's body pattern (pattern.rs): byte i is i % 251."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def stream_message(i, size):
    """Message i of ServerStream: `<i>:` then a-z repeated, cut to size."""
    prefix = b"%d:" % i
    return (prefix + b"abcdefghijklmnopqrstuvwxyz" * (size // 26 + 1))[:size]


def parse_count(request):
    """`n` or `n:size` of ServerStream and Cancelled."""
    n, _, size = request.decode().partition(":")
    return int(n), int(size) if size else 16


# ---- server ----------------------------------------------------------------

STATS = {"calls": 0, "cancelled": 0}
STATS_LOCK = threading.Lock()


def count(key):
    with STATS_LOCK:
        STATS[key] += 1


def begin(context):
    """Counts the call and sends the metadata every method sends. grpcio runs
    callbacks when a call ends for any reason; one that runs before the
    handler finished, with no status code set by the handler (abort sets one),
    means the client cancelled (or the deadline passed)."""
    call = {"done": False}
    count("calls")

    def on_end():
        if not call["done"] and context.code() is None:
            count("cancelled")

    context.add_callback(on_end)
    context.send_initial_metadata(HEADER)
    context.set_trailing_metadata(TRAILER)
    return call


def unary_response(fn):
    def handler(request, context):
        call = begin(context)
        try:
            return fn(request, context)
        finally:
            call["done"] = True

    return handler


def stream_response(fn):
    def handler(request, context):
        call = begin(context)
        try:
            yield from fn(request, context)
        except GeneratorExit:
            # grpcio closing the generator of a cancelled call: not done.
            raise
        except BaseException:
            call["done"] = True
            raise
        call["done"] = True

    return handler


def unary(request, context):
    if request.startswith(b"status:"):
        _, code, message = request.decode(errors="replace").split(":", 2)
        code = next(c for c in grpc.StatusCode if c.value[0] == int(code))
        context.abort(code, message)
    if request.startswith(b"sleep:"):
        # Wakes early when the call ends, so a deadline frees the worker.
        woken = threading.Event()
        context.add_callback(woken.set)
        woken.wait(int(request[6:]) / 1000)
    return request


def server_stream(request, context):
    n, size = parse_count(request)
    for i in range(n):
        yield stream_message(i, size)


def client_stream(requests, context):
    messages = total = 0
    for r in requests:
        messages += 1
        total += len(r)
    return b"count=%d bytes=%d" % (messages, total)


def bidi(requests, context):
    yield from requests


def stats(request, context):
    with STATS_LOCK:
        return json.dumps(STATS).encode()


def read(path):
    with open(path, "rb") as f:
        return f.read()


def serve(args):
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=64), options=MESSAGE_OPTIONS
    )
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary_response(unary)),
        "ServerStream": grpc.unary_stream_rpc_method_handler(
            stream_response(server_stream)
        ),
        "ClientStream": grpc.stream_unary_rpc_method_handler(
            unary_response(client_stream)
        ),
        "Bidi": grpc.stream_stream_rpc_method_handler(stream_response(bidi)),
        "Cancelled": grpc.unary_stream_rpc_method_handler(
            stream_response(server_stream)
        ),
        "Stats": grpc.unary_unary_rpc_method_handler(stats),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, handlers),)
    )
    address = "127.0.0.1:%d" % args.port
    if args.tls_cert:
        client_ca = read(args.client_ca) if args.client_ca else None
        credentials = grpc.ssl_server_credentials(
            [(read(args.tls_key), read(args.tls_cert))],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    server.start()
    print("ready %d" % port, flush=True)
    if not args.ignore_stdin:

        def watch_stdin():
            while sys.stdin.buffer.read(4096):
                pass
            print("grpc_peer: stdin closed, stopping", file=sys.stderr)
            server.stop(0)

        threading.Thread(target=watch_stdin, daemon=True).start()
    server.wait_for_termination()


# ---- client ----------------------------------------------------------------


def describe(data):
    """Short ASCII as text, anything else as length and hash prefix."""
    if len(data) <= 256 and all(32 <= b < 127 for b in data):
        return data.decode()
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()[:16]}


def metadata(md):
    return {
        k: describe(v) if isinstance(v, bytes) else v for k, v in (md or ())
    }


def outcome(call, responses):
    """The common JSON fields of a finished (or failed) call."""
    return {
        "code": call.code().name,
        "details": call.details() or "",
        "initial_metadata": metadata(call.initial_metadata()),
        "trailing_metadata": metadata(call.trailing_metadata()),
        "responses": [describe(r) for r in responses],
    }


def method(channel, kind, name):
    return getattr(channel, kind)("/%s/%s" % (SERVICE, name))


def call_unary(channel, name, request, timeout):
    try:
        response, call = method(channel, "unary_unary", name).with_call(
            request, timeout=timeout
        )
        return outcome(call, [response]), response
    except grpc.RpcError as e:
        return outcome(e, []), None


def call_server_stream(channel, name, request, timeout):
    call = method(channel, "unary_stream", name)(request, timeout=timeout)
    responses = []
    try:
        for r in call:
            responses.append(r)  # one by one: keeps what came before an error
    except grpc.RpcError:
        pass  # the call carries the code; outcome() reports it
    return call, responses


def scenario_unary(channel, timeout, text):
    return call_unary(channel, "Unary", text.encode(), timeout)[0]


def scenario_unary_large(channel, timeout, n):
    sent = pattern(int(n))
    out, response = call_unary(channel, "Unary", sent, timeout)
    out.update(sent=len(sent), received=len(response or b""), matched=response == sent)
    return out


def scenario_server_stream(channel, timeout, n, size="16"):
    call, responses = call_server_stream(
        channel, "ServerStream", ("%s:%s" % (n, size)).encode(), timeout
    )
    out = outcome(call, responses)
    expected = [stream_message(i, int(size)) for i in range(int(n))]
    out.update(count=len(responses), valid=responses == expected)
    return out


def scenario_client_stream(channel, timeout, n, size):
    messages = [pattern(int(size))] * int(n)
    try:
        response, call = method(channel, "stream_unary", "ClientStream").with_call(
            iter(messages), timeout=timeout
        )
        out = outcome(call, [response])
    except grpc.RpcError as e:
        out = outcome(e, [])
    out.update(sent_count=len(messages), sent_bytes=sum(map(len, messages)))
    return out


def scenario_bidi(channel, timeout, n):
    outbox = queue.Queue()
    end = object()
    call = method(channel, "stream_stream", "Bidi")(
        iter(outbox.get, end), timeout=timeout
    )
    sent, received = [], []
    try:
        # One in flight at a time: the echo must come back before the next
        # message is sent, so a proxy that buffers the stream fails this.
        for i in range(int(n)):
            sent.append(b"bidi-%d" % i)
            outbox.put(sent[-1])
            received.append(next(call))
        outbox.put(end)
        received.extend(call)  # drains to the status; expects nothing more
    except grpc.RpcError:
        pass
    except StopIteration:
        print("grpc_peer: bidi stream ended early", file=sys.stderr)
    finally:
        outbox.put(end)
    out = outcome(call, received)
    out.update(sent=len(sent), received=len(received), matched=received == sent)
    return out


def scenario_deadline(channel, _timeout, sleep_ms, timeout):
    start = time.monotonic()
    out = call_unary(channel, "Unary", b"sleep:%d" % int(sleep_ms), float(timeout))[0]
    out["elapsed_ms"] = round((time.monotonic() - start) * 1000)
    return out


def scenario_cancel(channel, timeout):
    # No deadline on the call: a grpc-timeout header would let the server
    # cancel by itself, and the test must see the client's cancellation
    # travel through the proxy. A timer cancels a hung call instead.
    call = method(channel, "unary_stream", "Cancelled")(b"1000000000:16")
    hung = threading.Timer(timeout, call.cancel)
    hung.start()
    responses = []
    try:
        for r in call:
            responses.append(r)
            if len(responses) == 2:
                break
    except grpc.RpcError:
        pass  # the timer fired; ok is false
    hung.cancel()
    call.cancel()
    out = outcome(call, responses)
    out.update(received=len(responses), ok=len(responses) == 2 and out["code"] == "CANCELLED")
    return out


def scenario_stats(channel, timeout):
    out, response = call_unary(channel, "Stats", b"", timeout)
    out["stats"] = json.loads(response) if response is not None else None
    return out


def scenario_many(channel, timeout, n, concurrency):
    slots = threading.BoundedSemaphore(int(concurrency))
    unary_method = method(channel, "unary_unary", "Unary")
    calls = []
    for i in range(int(n)):
        slots.acquire()
        request = b"many-%d" % i
        f = unary_method.future(request, timeout=timeout)
        f.add_done_callback(lambda _f: slots.release())
        calls.append((request, f))
    codes = {}
    succeeded = 0
    for request, f in calls:
        code = f.code().name
        codes[code] = codes.get(code, 0) + 1
        succeeded += code == "OK" and f.result() == request
    return {"calls": int(n), "succeeded": succeeded, "codes": codes}


SCENARIOS = {
    "unary": scenario_unary,
    "unary-large": scenario_unary_large,
    "server-stream": scenario_server_stream,
    "client-stream": scenario_client_stream,
    "bidi": scenario_bidi,
    "deadline": scenario_deadline,
    "cancel": scenario_cancel,
    "stats": scenario_stats,
    "many": scenario_many,
}


class Metadata(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds fixed metadata (request headers) to every call."""

    def __init__(self, pairs):
        self.pairs = pairs

    def _details(self, details):
        extra = list(details.metadata or []) + self.pairs
        return details._replace(metadata=extra)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._details(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._details(details), requests)


def call(args):
    options = list(MESSAGE_OPTIONS)
    if args.authority:
        # rauta routes by :authority; grpcio otherwise sends the target.
        options.append(("grpc.default_authority", args.authority))
    if args.tls:
        root = read(args.ca) if args.ca else None
        key = read(args.client_key) if args.client_key else None
        chain = read(args.client_cert) if args.client_cert else None
        if args.authority:
            options.append(("grpc.ssl_target_name_override", args.authority))
        credentials = grpc.ssl_channel_credentials(root, key, chain)
        channel = grpc.secure_channel(args.target, credentials, options=options)
    else:
        channel = grpc.insecure_channel(args.target, options=options)
    if args.metadata:
        pairs = [tuple(m.split("=", 1)) for m in args.metadata]
        channel = grpc.intercept_channel(channel, Metadata(pairs))
    start = time.monotonic()
    with channel:
        out = SCENARIOS[args.scenario](channel, args.timeout, *args.args)
    out = {"scenario": args.scenario, **out}
    out.setdefault("elapsed_ms", round((time.monotonic() - start) * 1000))
    print(json.dumps(out, sort_keys=True), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--ignore-stdin", action="store_true")
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    s.add_argument("--client-ca")
    c = sub.add_parser("call")
    c.add_argument("target")
    c.add_argument("scenario", choices=sorted(SCENARIOS))
    c.add_argument("args", nargs="*")
    c.add_argument("--authority")
    c.add_argument("--metadata", action="append", default=[])
    c.add_argument("--timeout", type=float, default=30.0)
    c.add_argument("--tls", action="store_true")
    c.add_argument("--ca")
    c.add_argument("--client-cert")
    c.add_argument("--client-key")
    args = parser.parse_args()
    if args.mode == "serve" and bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.mode == "serve" and args.client_ca and not args.tls_cert:
        parser.error("--client-ca needs --tls-cert and --tls-key")
    if args.mode == "serve":
        serve(args)
    else:
        call(args)


if __name__ == "__main__":
    main()
