#!/usr/bin/env python3
"""Webhook delivery latency under a load of identifies.

Starts `vouch serve` on a fresh data directory, a webhook receiver (a separate
Python process, so the load generator's threads do not slow it), subscribes the
receiver to `user.created`, then sends IDENTIFIES signed identifies of new users
from CLIENTS threads. For every user id it records the wall-clock time the
identify was sent and when its event arrived at the receiver; it prints
p50/p90/p99/max of the difference (the webhook body's `timestamp` has only second
resolution, so the clock is the client's). Everything runs on this machine, on
loopback, with the default retry schedule (no failures are expected).

    bench/webhook_latency.py [--bin target/release/vouch] [--identifies 2000] [--clients 16] [--rate 500]

Bounded: gives up after --deadline seconds (default 55) and reports what arrived.
"""

import argparse
import hashlib
import hmac
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADMIN_TOKEN = "vat_bench_webhook_admin_token_0123456789abcdef"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- receiver mode: a separate process printing "<user id> <arrival time>" lines ----


def run_receiver(port):
    out_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            at = time.time()
            try:
                event = json.loads(body)
                uid = event["data"]["id"]
                line = f"{uid} {at:.6f} {self.headers.get('webhook-id', '-')}\n"
            except (ValueError, KeyError, TypeError):
                line = f"- {at:.6f} -\n"
            self.send_response(204)
            self.send_header("content-length", "0")
            self.end_headers()
            with out_lock:
                sys.stdout.write(line)
                sys.stdout.flush()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    server.serve_forever()


# ---- the benchmark ----


def request(conn, method, path, token, body=None):
    headers = {"authorization": f"Bearer {token}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["content-type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    raw = resp.read()
    return resp.status, (json.loads(raw) if raw else None)


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100 * len(values) + 0.5)) - 1))
    return values[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=None, help="vouch binary (default: target/release/vouch, else target/debug/vouch)")
    ap.add_argument("--identifies", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rate", type=float, default=0,
                    help="total identifies per second, paced across the clients (0: as fast as they go)")
    ap.add_argument("--deadline", type=float, default=55.0, help="give up after this many seconds")
    ap.add_argument("--receiver", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.receiver is not None:
        run_receiver(args.receiver)
        return 0

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = args.bin
    if binary is None:
        for cand in ("target/release/vouch", "target/debug/vouch"):
            if os.path.exists(os.path.join(root, cand)):
                binary = os.path.join(root, cand)
                break
    if binary is None or not os.path.exists(binary):
        sys.exit("no vouch binary: run `cargo build -p vouch` (or --release), or pass --bin")

    started = time.time()
    data_dir = tempfile.mkdtemp(prefix="vouch-webhook-bench-")
    procs = []
    try:
        recv_port, vouch_port = free_port(), free_port()
        receiver = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--receiver", str(recv_port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(receiver)
        assert receiver.stdout.readline().strip() == "ready"
        arrivals = {}
        arrival_count = [0]
        lock = threading.Lock()

        def collect():
            for line in receiver.stdout:
                uid, at, _msg = line.split()
                with lock:
                    arrival_count[0] += 1
                    arrivals.setdefault(uid, float(at))

        threading.Thread(target=collect, daemon=True).start()

        log = open(os.path.join(data_dir, "vouch.log"), "w")
        vouch = subprocess.Popen(
            [binary, "serve", "--data-dir", os.path.join(data_dir, "data"),
             "--addr", f"127.0.0.1:{vouch_port}", "--allow-private-webhooks"],
            env={**os.environ, "VOUCH_ADMIN_TOKEN": ADMIN_TOKEN},
            stdout=log, stderr=subprocess.STDOUT,
        )
        procs.append(vouch)
        for _ in range(200):
            try:
                c = http.client.HTTPConnection("127.0.0.1", vouch_port, timeout=2)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if vouch.poll() is not None:
                sys.exit(f"vouch exited; see {data_dir}/vouch.log")
            time.sleep(0.05)
        admin = http.client.HTTPConnection("127.0.0.1", vouch_port, timeout=10)
        st, env = request(admin, "POST", "/admin/v1/environments", ADMIN_TOKEN, {"name": "webhook bench"})
        assert st == 201, (st, env)
        st, wh = request(admin, "POST", f"/admin/v1/environments/{env['id']}/webhooks", ADMIN_TOKEN,
                         {"url": f"http://127.0.0.1:{recv_port}/hook", "event_types": ["user.created"]})
        assert st == 201, (st, wh)
        pk, key = env["publishable_key"], env["secret"]["value"].encode()

        sent = {}
        answered = {}
        request_ms = []
        errors = []
        n, clients = args.identifies, args.clients
        tag = os.urandom(3).hex()

        load_start = time.time() + 0.2

        def client(k):
            conn = http.client.HTTPConnection("127.0.0.1", vouch_port, timeout=30)
            for i in range(k, n, clients):
                if args.rate > 0:
                    delay = load_start + i / args.rate - time.time()
                    if delay > 0:
                        time.sleep(delay)
                uid = f"bench-{tag}-{i}"
                sig = hmac.new(key, uid.encode(), hashlib.sha256).hexdigest()
                t0 = time.time()
                with lock:
                    sent[uid] = t0
                try:
                    st, body = request(conn, "POST", "/v1/identify", pk,
                                       {"user_id": uid, "signature": sig, "attributes": {"plan": "pro"}})
                except (OSError, http.client.HTTPException) as e:
                    errors.append(repr(e))
                    conn = http.client.HTTPConnection("127.0.0.1", vouch_port, timeout=30)
                    continue
                t1 = time.time()
                with lock:
                    answered[uid] = t1
                    request_ms.append((t1 - t0) * 1000)
                if st != 200:
                    errors.append(f"{st} {body}")

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        load_secs = time.time() - load_start
        while time.time() - started < args.deadline:
            with lock:
                if all(u in arrivals for u in answered):
                    break
            time.sleep(0.05)
        drain_secs = time.time() - load_start

        with lock:
            lat = [(arrivals[u] - sent[u]) * 1000 for u in answered if u in arrivals]
            after_answer = [(arrivals[u] - answered[u]) * 1000 for u in answered if u in arrivals]
            missing = [u for u in answered if u not in arrivals]
            total_requests = arrival_count[0]

        # Vouch's own log: how long each attempt took (request sent → response read).
        attempt_ms, cursor = [], None
        admin = http.client.HTTPConnection("127.0.0.1", vouch_port, timeout=10)  # the first one idled out
        while True:
            path = f"/admin/v1/environments/{env['id']}/webhooks/{wh['id']}/deliveries?limit=200"
            if cursor:
                path += f"&cursor={cursor}"
            st, page = request(admin, "GET", path, ADMIN_TOKEN)
            if st != 200:
                break
            attempt_ms += [a["latency_ms"] for a in page["data"]]
            cursor = page.get("next_cursor")
            if not cursor:
                break

        def row(name, v):
            return (f"| {name} | {pct(v, 50):.1f} | {pct(v, 90):.1f} | {pct(v, 99):.1f} | {max(v):.1f} |"
                    if v else f"| {name} | - | - | - | - |")

        build = "release" if "/release/" in binary else "debug"
        print(f"vouch webhook latency: {n} identifies (new users, signed) from {clients} threads, "
              f"{'at ' + str(args.rate) + '/s, ' if args.rate else ''}{build} build, {os.cpu_count()} cores, SQLite, loopback receiver")
        print(f"identify throughput: {len(answered) / load_secs:.0f}/s over {load_secs:.1f} s; "
              f"all {len(lat)} events delivered {drain_secs:.1f} s after the load started; "
              f"{total_requests} webhook requests; errors: {len(errors)}; missing: {len(missing)}")
        print()
        print("| ms | p50 | p90 | p99 | max |")
        print("|---|---|---|---|---|")
        print(row("identify sent → webhook received", lat))
        print(row("identify answered → webhook received", after_answer))
        print(row("identify request (client)", request_ms))
        print(row("webhook attempt (Vouch's log, latency_ms)", attempt_ms))
        if errors:
            print("first errors:", errors[:5], file=sys.stderr)
        return 0 if not missing and not errors else 1
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
