#!/usr/bin/env python3
"""Times the auditors' reads on each layout, the layouts alternating run after run:
`qrpark export` of one month (JSONL, all lots, then one lot) and GET /v1/audit/summary of
the month (all lots, then one lot) through `qrpark serve`.

    measure.py QRPARK_BINARY FROM TO RUNS NAME,DATABASE_URL,DATA_DIR [NAME,URL,DIR ...]

The lot is the first by id (the same in every layout, which are copies of one database).
Prints one line per measurement, then a Markdown table (median and every run).
"""
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

from city import Idp, Serve, call


def psql(url, sql):
    return subprocess.run(["psql", url, "-XAtc", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def export(binary, url, data_dir, since, until, lot=None):
    """Wall time, records, and size and chain head of one `qrpark export` (the same rows
    give the same head), the file removed afterwards."""
    # In memory where there is a tmpfs: the file is removed at once, and the disk is spared.
    folder = "/dev/shm" if os.path.isdir("/dev/shm") else None
    out = pathlib.Path(tempfile.mkdtemp(prefix="qrpark-partition-", dir=folder)) / "month.jsonl"
    args = [binary, "export", "--from", since, "--to", until, "--format", "jsonl",
            "--out", str(out)]
    if lot:
        args += ["--lot", lot]
    env = {**os.environ, "QRPARK_DATABASE_URL": url, "QRPARK_DATA_DIR": data_dir}
    began = time.monotonic()
    done = subprocess.run(args, env=env, capture_output=True, text=True, cwd=out.parent)
    took = time.monotonic() - began
    if done.returncode != 0:
        sys.exit(f"qrpark export failed ({done.returncode}): {done.stderr.strip()}")
    printed = done.stdout
    size = out.stat().st_size
    out.unlink()
    out.parent.rmdir()
    found = re.search(r": (\d+) records, chain head (\w+)", printed)
    return took, int(found[1]), f"{size / 1e6:.1f} MB, head {found[2][:16]}"


def summary(serve, token, since, until, lot=None):
    query = {"from": since, "to": until}
    if lot:
        query["lot"] = lot
    began = time.monotonic()
    rows = call(serve.base, "GET", "/v1/audit/summary?" + urllib.parse.urlencode(query),
                token=token)["rows"]
    took = time.monotonic() - began
    return took, sum(r["sessions"] for r in rows), len(rows)


def main():
    binary, since, until = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3]
    runs = int(sys.argv[4])
    layouts = [spec.split(",", 2) for spec in sys.argv[5:]]
    lot = psql(layouts[0][1], "select lot_id from lot order by lot_id limit 1")
    results = {}

    def note(name, kind, took, records, extra):
        results.setdefault((name, kind), []).append((took, records))
        print(f"{name:8} {kind:22} {took:8.2f} s {records:>9} records "
              f"{records / took:>9.0f} records/s {extra}", flush=True)

    for run in range(runs):
        for name, url, data_dir in layouts:
            took, records, what = export(binary, url, data_dir, since, until)
            note(name, "export month", took, records, what)
            took, records, what = export(binary, url, data_dir, since, until, lot)
            note(name, "export month, one lot", took, records, what)
            idp = Idp(data_dir)
            token = idp.token("city-auditor", roles=["auditor"])
            with Serve(binary, url, data_dir, idp, log=f"{data_dir}/serve.log") as serve:
                took, sessions, rows = summary(serve, token, since, until)
                note(name, "summary month", took, sessions, f"{rows} rows")
                took, sessions, rows = summary(serve, token, since, until, lot)
                note(name, "summary month, one lot", took, sessions, f"{rows} rows")

    print()
    print("| layout | read | records | seconds, median (runs) | records/s, median |")
    print("|---|---|---|---|---|")
    for (name, kind), values in results.items():
        times = [t for t, _ in values]
        records = values[0][1]
        median = statistics.median(times)
        runs_text = " · ".join(f"{t:.2f}" for t in times)
        print(f"| {name} | {kind} | {records:,} | {median:.2f} ({runs_text}) | "
              f"{records / median:,.0f} |")


if __name__ == "__main__":
    main()
