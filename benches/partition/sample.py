#!/usr/bin/env python3
"""A real load through qrpark's API, to measure what a row costs on PostgreSQL: WORKERS
drivers, each on spaces of its own, start a session with a plate and stop it, SESSIONS
in all; one stop in a hundred is refunded in part by its operator. The payment gateway is
a double that accepts every payment, so each session is settled through the outbox as in
a city. Afterwards sizes.sql reports bytes per row.

    sample.py DATABASE_URL QRPARK_BINARY DATA_DIR SESSIONS [WORKERS]

DATA_DIR keeps the database's key-encryption key (and the identity provider's key).
"""
import concurrent.futures
import json
import re
import subprocess
import sys
import time
import urllib.request
import uuid

from city import Idp, Serve, call, gateway
from seed import TARIFF, lot, operator

# Without the tariff's 15 minutes of grace, so that a session stopped at once is charged
# its first increment (2.50) and paid through the gateway, as a real session would be.
CHARGED = json.dumps({**json.loads(TARIFF), "grace_minutes": 0})


def psql(url, sql):
    return subprocess.run(["psql", url, "-XAtc", sql], check=True, capture_output=True,
                          text=True).stdout.strip()


def main():
    url, binary, data_dir = sys.argv[1:4]
    sessions = int(sys.argv[4])
    workers = int(sys.argv[5]) if len(sys.argv) > 5 else 16
    idp = Idp(data_dir)
    with Serve(binary, url, data_dir, idp, payments=gateway(),
               log=f"{data_dir}/serve.log") as serve:
        base = serve.base
        key = operator(serve, "Sample Operator")
        spaces = []
        for n in range(2):
            spaces += lot(base, key, f"Sample Street {n}", 100, tariff=CHARGED)[1]
        qrs = [s["qr_url"].rsplit("/", 1)[1] for s in spaces]

        def drive(w):
            token = idp.token(f"sample-driver-{w:04d}")
            mine = qrs[w::workers]
            refund = []
            for n in range(w, sessions, workers):
                started = call(base, "POST", "/v1/sessions",
                               {"qr": mine[n % len(mine)], "plate": f"沪A{n % 100000:05d}"},
                               token, headers={"idempotency-key": str(uuid.uuid4())})
                call(base, "POST", f"/v1/sessions/{started['id']}/stop", token=token)
                if n % 100 == 0:
                    refund.append(started["id"])
            return refund

        def delivered():
            # Every payment and refund delivered, as in a city a few seconds later.
            while psql(url, "select (select count(*) from settlement_outbox) "
                            "+ (select count(*) from refund_outbox)") != "0":
                time.sleep(0.5)

        wal = psql(url, "select pg_current_wal_lsn()")
        began = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            refund = [i for ids in pool.map(drive, range(workers)) for i in ids]
        took = time.monotonic() - began
        delivered()
        # Refunds once the fees are collected (a refund of a pending fee is refused).
        for session_id in refund:
            call(base, "POST", f"/v1/operator/sessions/{session_id}/refunds",
                 {"amount": "0.50", "reason": "sample refund"}, key,
                 headers={"idempotency-key": str(uuid.uuid4())})
        delivered()
        time.sleep(1)
        # WAL written meanwhile, by the whole cluster (an upper bound if others use it).
        written = int(psql(url, f"select pg_current_wal_lsn() - '{wal}'::pg_lsn"))
        print(f"WAL: {written / 1e6:.1f} MB, {written / sessions:.0f} bytes a session "
              "(cluster-wide)", file=sys.stderr)
        # The sealer's pace under this load (this process's sealer did all the sealing).
        metrics = urllib.request.urlopen(base + "/metrics", timeout=10).read().decode()
        sealed = re.search(r"^audit_events_sealed_total (\S+)", metrics, re.M)
        batches = re.search(r"^audit_seal_batch_seconds_count (\S+)", metrics, re.M)
        seconds = re.search(r"^audit_seal_batch_seconds_sum (\S+)", metrics, re.M)
        if sealed and batches and seconds:
            print(f"sealer: {float(sealed[1]):.0f} events in {float(batches[1]):.0f} batches, "
                  f"{1000 * float(seconds[1]) / float(batches[1]):.1f} ms a batch on average",
                  file=sys.stderr)
    print(f"{sessions} sessions started and stopped in {took:.1f} s "
          f"({2 * sessions / took:.0f} requests/s, {workers} drivers)", file=sys.stderr)


if __name__ == "__main__":
    main()
