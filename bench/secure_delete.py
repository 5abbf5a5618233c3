#!/usr/bin/env python3
"""What `PRAGMA secure_delete` costs the SQLite writes Vouch makes, as pages
written to the WAL per commit (deterministic: the same on a loaded machine)
and commits per second (noisy: fsync-bound, best and median of 5 runs).

Workloads, one transaction per write, WAL with synchronous = FULL as the
server runs it: an upsert that changes a user with small (300 B) or large
(8 KB, overflow pages) attributes, as identify does; and the delete of users
with small or 32 KB attributes, as an erasure does.

    python3 bench/secure_delete.py

Uses Python's sqlite3 module (the system SQLite), not the server's bundled
one; the page counts are a property of the file format and the pragma.
"""
import json
import os
import random
import sqlite3
import statistics
import tempfile
import time

SIZES = {"upsert-small": 300, "upsert-large": 8000, "delete-small": 300, "delete-large": 32000}
COMMITS = {"upsert-small": 1000, "upsert-large": 500, "delete-small": 500, "delete-large": 300}
MODES = ("OFF", "FAST", "ON")


def run(mode, workload, n, path):
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(path + suffix)
        except FileNotFoundError:
            pass
    c = sqlite3.connect(path, isolation_level=None)
    c.execute("PRAGMA journal_mode=WAL")
    c.execute("PRAGMA synchronous=FULL")
    c.execute(f"PRAGMA secure_delete={mode}")
    c.execute("CREATE TABLE users (env_id TEXT, id TEXT, attributes TEXT, updated_at INTEGER, PRIMARY KEY (env_id, id))")
    size = SIZES[workload]
    deleting = workload.startswith("delete")
    users = n if deleting else 2000
    c.execute("BEGIN")
    for i in range(users):
        c.execute("INSERT INTO users VALUES ('env', ?, ?, 0)", (f"user-{i}", json.dumps({"pad": "x" * size, "v": 0})))
    c.execute("COMMIT")
    c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    c.execute("PRAGMA wal_autocheckpoint=0")
    random.seed(1)
    started = time.perf_counter()
    for i in range(n):
        c.execute("BEGIN IMMEDIATE")
        if deleting:
            c.execute("DELETE FROM users WHERE env_id = 'env' AND id = ?", (f"user-{i}",))
        else:
            c.execute(
                "INSERT INTO users VALUES ('env', ?, ?, ?) ON CONFLICT (env_id, id) DO UPDATE "
                "SET attributes = excluded.attributes, updated_at = excluded.updated_at",
                (f"user-{random.randrange(users)}", json.dumps({"pad": "y" * size, "v": i}), i),
            )
        c.execute("COMMIT")
    elapsed = time.perf_counter() - started
    frames = c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    c.close()
    return frames / n, n / elapsed


def main():
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(5):
            for workload, n in COMMITS.items():
                for mode in MODES:
                    path = os.path.join(tmp, f"{mode}.db")
                    results.setdefault((workload, mode), []).append(run(mode, workload, n, path))
    print(f"SQLite {sqlite3.sqlite_version}\n")
    print("| workload | secure_delete | WAL pages per commit | commits/s (best) | commits/s (median) |")
    print("|---|---|---|---|---|")
    for workload in COMMITS:
        for mode in MODES:
            runs = results[(workload, mode)]
            rates = [r for _, r in runs]
            print(f"| {workload} | {mode} | {runs[0][0]:.2f} | {max(rates):.0f} | {statistics.median(rates):.0f} |")


if __name__ == "__main__":
    main()
