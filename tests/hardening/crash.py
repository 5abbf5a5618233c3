#!/usr/bin/env python3
"""Crash durability: acknowledged writes survive SIGKILL.

Many client threads send identifies (signed, with attributes) and tracks to a running
`vouch serve`, recording every 200/202 answer. The server is killed with SIGKILL at a
random moment, restarted on the same data directory, and this repeats for several
rounds. At the end every acknowledged user and event is looked up through the admin
API: none may be missing, and no user may show half-written state (each identify writes
attributes that all carry the same version number, so a torn write shows as a mix).

Environment: VOUCH_BIN (default target/debug/vouch), ROUNDS (5), CLIENTS (8),
HARDENING_OUT (a directory for logs, the data directory and issued secrets).
Builds nothing.
"""

import hashlib
import hmac
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOUCH_BIN = os.environ.get("VOUCH_BIN", os.path.join(ROOT, "target", "debug", "vouch"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
CLIENTS = int(os.environ.get("CLIENTS", "8"))
ADMIN_TOKEN = "vat_crash_test_admin_token_0123456789abcdefghij"
ATTR_FIELDS = ("a", "b", "c", "d")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, data_dir, out_dir):
        self.data_dir = data_dir
        self.out_dir = out_dir
        self.port = free_port()
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        env = dict(os.environ, VOUCH_ADMIN_TOKEN=ADMIN_TOKEN, VOUCH_LOG="info")
        out = open(os.path.join(self.out_dir, "crash-server.stdout.log"), "ab")
        err = open(os.path.join(self.out_dir, "crash-server.stderr.log"), "ab")
        self.proc = subprocess.Popen(
            [VOUCH_BIN, "serve", "--data-dir", self.data_dir, "--addr", f"127.0.0.1:{self.port}"],
            stdout=out, stderr=err, env=env)
        out.close()
        err.close()
        deadline = time.time() + 30
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"crash: the server exited with {self.proc.returncode} on start {self.starts}")
            try:
                status, _ = request(self.port, "GET", "/healthz", timeout=1)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        sys.exit("crash: the server did not become healthy within 30 s")

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def request(port, method, path, body=None, token=None, timeout=10, conn=None):
    own = conn is None
    if own:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    finally:
        if own:
            conn.close()
    try:
        return resp.status, json.loads(raw) if raw else None
    except ValueError:
        return resp.status, raw


def sign(secret, message):
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


class Ledger:
    """What the server acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = {}  # user id -> highest acknowledged version
        self.sent = {}  # user id -> highest version sent
        self.events = {}  # event id -> (user id, name, properties)
        self.server_errors = []
        self.acked_writes = 0

    def ack_user(self, uid, version):
        with self.lock:
            self.acked_writes += 1
            self.users[uid] = max(version, self.users.get(uid, 0))

    def sent_user(self, uid, version):
        with self.lock:
            self.sent[uid] = max(version, self.sent.get(uid, 0))


def attributes(client, version):
    attrs = {f: f"{f}-v{version}" for f in ATTR_FIELDS}
    attrs.update(version=version, client=client, pad="p" * random.randint(0, 2000))
    return attrs


def client_loop(cid, round_no, port, env, ledger, stop):
    """Identifies a few users again and again (new attribute versions) and tracks events."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    users = [f"c{cid}-u{i}" for i in range(5)] + [f"c{cid}-r{round_no}"]
    n = 0
    try:
        while not stop.is_set():
            n += 1
            uid = random.choice(users)
            with ledger.lock:
                version = ledger.sent.get(uid, 0) + 1
                ledger.sent[uid] = version
            body = {"user_id": uid, "signature": sign(env["secret"], uid),
                    "attributes": attributes(cid, version)}
            status, out = request(port, "POST", "/v1/identify", body, env["pk"], conn=conn)
            if status >= 500:
                ledger.server_errors.append((status, out))
            if status != 200:
                continue
            ledger.ack_user(uid, version)
            session = out["session_token"]
            for k in range(random.randint(0, 3)):
                name = f"evt-{cid}-{n}-{k}"
                props = {"name": name, "user": uid, "k": k}
                status, out = request(port, "POST", "/v1/track", {"event": name, "properties": props},
                                      session, conn=conn)
                if status >= 500:
                    ledger.server_errors.append((status, out))
                if status == 202:
                    with ledger.lock:
                        ledger.acked_writes += 1
                        ledger.events[out["id"]] = (uid, name, props)
    except (OSError, http.client.HTTPException):
        pass  # the server was killed
    finally:
        conn.close()


def check(port, env, ledger):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    lost_users, torn = [], []
    for uid, acked in sorted(ledger.users.items()):
        path = f"/admin/v1/environments/{env['id']}/users/{urllib.parse.quote(uid, safe='')}"
        status, user = request(port, "GET", path, token=ADMIN_TOKEN, conn=conn)
        if status != 200:
            lost_users.append((uid, status))
            continue
        attrs = user["attributes"]
        version = attrs.get("version")
        consistent = (isinstance(version, int)
                      and all(attrs.get(f) == f"{f}-v{version}" for f in ATTR_FIELDS)
                      and acked <= version <= ledger.sent[uid])
        if not consistent or not user["verified"] or user["verified_by"] != "signature":
            torn.append((uid, acked, ledger.sent[uid], user))
    seen = {}
    cursor = None
    pages = 0
    while True:
        path = f"/admin/v1/environments/{env['id']}/events?limit=200"
        if cursor:
            path += "&cursor=" + urllib.parse.quote(cursor, safe="")
        status, page = request(port, "GET", path, token=ADMIN_TOKEN, conn=conn)
        if status != 200:
            sys.exit(f"crash: listing events answered {status}: {page}")
        pages += 1
        for e in page["data"]:
            seen[e["id"]] = e
        cursor = page.get("next_cursor")
        if not cursor:
            break
    lost_events, torn_events = [], []
    for eid, (uid, name, props) in ledger.events.items():
        e = seen.get(eid)
        if e is None:
            lost_events.append(eid)
        elif e["event"] != name or e["user_id"] != uid or e["properties"] != props:
            torn_events.append((eid, e))
    # Nothing in the store that no client sent, and every stored event whole.
    for eid, e in seen.items():
        if e["properties"].get("name") != e["event"]:
            torn_events.append((eid, e))
    conn.close()
    return lost_users, torn, lost_events, torn_events, len(seen)


def main():
    out_dir = os.environ.get("HARDENING_OUT") or tempfile.mkdtemp(prefix="vouch-crash-")
    os.makedirs(out_dir, exist_ok=True)
    data_dir = os.path.join(out_dir, "crash-data")
    os.makedirs(data_dir, exist_ok=True)
    if not os.access(VOUCH_BIN, os.X_OK):
        sys.exit(f"crash: {VOUCH_BIN} is missing; build it with `cargo build -p vouch`")
    server = Server(data_dir, out_dir)
    server.start()
    status, created = request(server.port, "POST", "/admin/v1/environments",
                              {"name": "crash test"}, ADMIN_TOKEN)
    if status != 201:
        sys.exit(f"crash: creating an environment answered {status}: {created}")
    env = {"id": created["id"], "pk": created["publishable_key"], "secret": created["secret"]["value"]}
    with open(os.path.join(out_dir, "secrets.txt"), "a") as f:
        f.write(env["secret"] + "\n" + ADMIN_TOKEN + "\n")
    ledger = Ledger()
    for round_no in range(1, ROUNDS + 1):
        if round_no > 1:
            server.start()
        stop = threading.Event()
        threads = [threading.Thread(target=client_loop,
                                    args=(c, round_no, server.port, env, ledger, stop))
                   for c in range(CLIENTS)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.5, 3.0))
        server.kill()
        stop.set()
        for t in threads:
            t.join()
        print(f"crash: round {round_no}: SIGKILL; so far {len(ledger.users)} users, "
              f"{len(ledger.events)} events acknowledged", flush=True)
    server.start()
    lost_users, torn, lost_events, torn_events, stored = check(server.port, env, ledger)
    server.stop()
    print(f"crash: {ROUNDS} kill rounds, {len(ledger.users)} users and {len(ledger.events)} "
          f"events acknowledged ({ledger.acked_writes} acknowledged writes checked, {stored} events stored); "
          f"lost users {len(lost_users)}, torn users {len(torn)}, lost events {len(lost_events)}, "
          f"torn events {len(torn_events)}, server errors {len(ledger.server_errors)}")
    failed = False
    for what, items in (("lost user", lost_users), ("torn user", torn), ("lost event", lost_events),
                        ("torn event", torn_events), ("server error", ledger.server_errors)):
        for item in items[:5]:
            print(f"crash: {what}: {item}")
        failed = failed or bool(items)
    if not ledger.users or not ledger.events:
        print("crash: nothing was acknowledged; the test proved nothing")
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
