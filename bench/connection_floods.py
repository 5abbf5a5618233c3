#!/usr/bin/env python3
"""Connection floods against the real release binary, on loopback only.

    cargo build --release -p vouch
    python3 bench/connection_floods.py [target/release/vouch]

Starts `vouch serve` on a fresh data directory and runs four floods, each bounded in
count and time, while another loopback address calls /healthz every 50 ms:

1. silent: 1 100 connections from 127.0.0.2-6 that send nothing;
2. one address: 400 connections from 127.0.0.9;
3. no-read, public: 200 clients from 127.0.0.10-11 that each ask for `GET /v1/me` of a
   user in 100 companies of 32 KiB (the largest answer anyone with the publishable key can
   build, about 3.2 MB) and never read;
4. no-read, admin: the same with a page of 200 users of 32 KiB attributes (about 6.5 MB).

Prints, per flood: the connections the server holds (vouch_http_connections_open), the
slowest /healthz, and for the no-read flood the server's RSS over time (the answers not
read are dropped 30 s after their last written byte).
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ADMIN_TOKEN = "bench-admin-token-0123456789-abcdefghijklmnop"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connect(src, port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def request(port, path, src="127.0.0.1", timeout=5.0):
    """One GET on a new connection: (seconds, status line, body)."""
    started = time.monotonic()
    s = connect(src, port)
    s.settimeout(timeout)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return time.monotonic() - started, head.split(b"\r\n")[0].decode(errors="replace"), body


def call(port, method, path, bearer, body=None):
    """One JSON request: (status, parsed body)."""
    s = connect("127.0.0.1", port)
    s.settimeout(30)
    data = b"" if body is None else json.dumps(body).encode()
    s.sendall(
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        f"Authorization: Bearer {bearer}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode() + data
    )
    answer = b""
    while chunk := s.recv(65536):
        answer += chunk
    s.close()
    head, _, rest = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(rest) if rest.startswith(b"{") else None


def new_env(port, name):
    status, env = call(port, "POST", "/admin/v1/environments", ADMIN_TOKEN, {"name": name})
    assert status == 201, env
    return env


def big_user_page(port):
    """An environment with 200 users of 32 KiB attributes; the path of its users page."""
    env = new_env(port, "floods-page")
    filler = "x" * (32 * 1024 - 64)
    for i in range(200):
        status, answer = call(port, "POST", "/v1/identify", env["publishable_key"],
                              {"user_id": f"user-{i}", "attributes": {"notes": filler}})
        assert status == 200, answer
    return f"/admin/v1/environments/{env['id']}/users?limit=200"


def fat_member(port):
    """The session of an unproven user in 100 unproven companies of 32 KiB each."""
    env = new_env(port, "floods-me")
    status, answer = call(port, "POST", "/v1/identify", env["publishable_key"],
                          {"user_id": "member", "attributes": {"notes": "x" * (32 * 1024 - 64)}})
    assert status == 200, answer
    session = answer["session_token"]
    filler = "x" * (32 * 1024 - 64)
    for i in range(100):
        status, answer = call(port, "POST", "/v1/group", session,
                              {"company_id": f"c{i:03}", "attributes": {"blob": filler}})
        assert status == 200, answer
    return session


def gauge(port):
    _, _, body = request(port, "/metrics")
    for line in body.decode(errors="replace").splitlines():
        if line.startswith("vouch_http_connections_open "):
            # The /metrics connection itself is one of them.
            return int(float(line.split()[1])) - 1
    return -1


def request_as(port, path, bearer):
    started = time.monotonic()
    s = connect("127.0.0.1", port)
    s.settimeout(30)
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              f"Authorization: Bearer {bearer}\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(1 << 20):
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return time.monotonic() - started, head.split(b"\r\n")[0].decode(), body


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Prober(threading.Thread):
    """/healthz from 127.0.0.1 every 50 ms; remembers the slowest answer."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.worst, self.failures, self.count = port, 0.0, 0, 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                took, status, _ = request(self.port, "/healthz", timeout=5.0)
                ok = status.startswith("HTTP/1.1 200")
            except OSError:
                took, ok = 5.0, False
            self.worst = max(self.worst, took)
            self.failures += 0 if ok else 1
            self.count += 1
            time.sleep(0.05)


def flood(name, port, open_conns, hold):
    prober = Prober(port)
    prober.start()
    started = time.monotonic()
    conns = open_conns()
    opened = time.monotonic() - started
    time.sleep(0.5)
    held = gauge(port)
    print(f"{name}: {len(conns)} client sockets opened in {opened:.2f} s; server holds {held}")
    samples = hold(conns)
    prober.stop.set()
    prober.join()
    print(
        f"{name}: /healthz from another address, slowest of {prober.count}: "
        f"{prober.worst * 1000:.1f} ms, failures {prober.failures}"
    )
    for s in conns:
        s.close()
    return held, prober.worst, samples


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/vouch"
    port = free_port()
    data = tempfile.mkdtemp(prefix="vouch-floods-")
    env = dict(os.environ, VOUCH_ADMIN_TOKEN=ADMIN_TOKEN, VOUCH_LOG="warn")
    env.pop("VOUCH_DATABASE_URL", None)
    env.pop("VOUCH_MASTER_KEY", None)
    server = subprocess.Popen(
        [binary, "serve", "--data-dir", data, "--addr", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                if request(port, "/healthz")[1].startswith("HTTP/1.1 200"):
                    break
            except OSError:
                time.sleep(0.05)
        _, _, openapi = request(port, "/openapi.json")
        print(f"server pid {server.pid}; /openapi.json is {len(openapi)} bytes; RSS {rss_mib(server.pid):.1f} MiB")

        def silent():
            return [connect(f"127.0.0.{2 + i % 5}", port) for i in range(1100)]

        def until_closed(conns):
            # Every silent socket sees its close within 10 s + slack.
            deadline = time.monotonic() + 14
            for s in conns:
                s.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    s.recv(1)
                except OSError:
                    pass
            print(f"silent: server holds {gauge(port)} after the head timeout")

        flood("silent", port, silent, until_closed)

        def one_address():
            return [connect("127.0.0.9", port) for _ in range(400)]

        def count_open(conns):
            closed = 0
            for s in conns:
                s.settimeout(0.01)
                try:
                    if s.recv(1) == b"":
                        closed += 1
                except socket.timeout:
                    pass
                except OSError:
                    closed += 1
            print(f"one address: {len(conns) - closed} open, {closed} closed at once")
            time.sleep(2)

        flood("one address", port, one_address, count_open)

        def no_read_flood(name, path, bearer):
            took, status, body = request_as(port, path, bearer)
            print(f"{name}: one answer is {len(body)} bytes ({status}, {took * 1000:.0f} ms)")
            rss_before = rss_mib(server.pid)
            ask = (f"GET {path} HTTP/1.1\r\nHost: x\r\n"
                   f"Authorization: Bearer {bearer}\r\n\r\n").encode()

            def no_read():
                conns = []
                for i in range(200):
                    s = connect(f"127.0.0.{10 + i % 2}", port, rcvbuf=4096)
                    s.sendall(ask)
                    conns.append(s)
                return conns

            def watch_rss(conns):
                samples = []
                started = time.monotonic()
                while time.monotonic() - started < 45:
                    samples.append((time.monotonic() - started, rss_mib(server.pid)))
                    time.sleep(1)
                peak = max(r for _, r in samples)
                print(f"{name}: RSS before {rss_before:.1f} MiB, peak {peak:.1f} MiB, "
                      f"after 45 s {samples[-1][1]:.1f} MiB; server holds {gauge(port)}")
                print(f"{name}: RSS by second: " + ", ".join(f"{t:.0f}s {r:.0f}" for t, r in samples[::5]))
                return samples

            flood(name, port, no_read, watch_rss)

        no_read_flood("no-read /v1/me", "/v1/me", fat_member(port))
        no_read_flood("no-read users page", big_user_page(port), ADMIN_TOKEN)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
