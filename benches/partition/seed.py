#!/usr/bin/env python3
"""Seeds a migrated qrpark database through `qrpark serve` as a city would: operators
(with the `qrpark operator create` command), lots with the Beijing on-street tariff, and
spaces with their signed QR codes. No sessions: generate.sql writes those.

    seed.py DATABASE_URL QRPARK_BINARY DATA_DIR OPERATORS LOTS SPACES_PER_LOT

DATA_DIR keeps the database's key-encryption key (and the identity provider's key).
"""
import concurrent.futures
import json
import pathlib
import subprocess
import sys

from city import Idp, Serve, call

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARIFF = (ROOT / "fixtures" / "tariffs" / "beijing-on-street.json").read_text()


def operator(serve, name):
    out = subprocess.run([serve.binary, "operator", "create", name, "--json"], check=True,
                         capture_output=True, text=True, env=serve.env).stdout
    return json.loads(out)["api_key"]


def lot(base, key, name, spaces, plate_required=True, tariff=TARIFF):
    created = call(base, "POST", "/v1/operator/lots", {
        "name": name, "timezone": "Asia/Shanghai", "currency": "CNY",
        "plate_required": plate_required}, key)
    call(base, "PUT", f"/v1/operator/lots/{created['id']}/tariff", raw=tariff, token=key)
    made = []
    for first in range(0, spaces, 100):
        codes = [f"S{n:05d}" for n in range(first, min(first + 100, spaces))]
        made += call(base, "POST", f"/v1/operator/lots/{created['id']}/spaces",
                     {"codes": codes}, key)["spaces"]
    return created["id"], made


def main():
    url, binary, data_dir = sys.argv[1:4]
    operators, lots, per_lot = (int(a) for a in sys.argv[4:7])
    idp = Idp(data_dir)
    with Serve(binary, url, data_dir, idp, log=f"{data_dir}/serve.log") as serve:
        keys = [operator(serve, f"City Operator {k:02d}") for k in range(operators)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            done = list(pool.map(lambda n: lot(serve.base, keys[n % operators],
                                               f"Street {n:03d}", per_lot), range(lots)))
    print(f"seeded {operators} operators, {len(done)} lots, "
          f"{sum(len(s) for _, s in done)} spaces", file=sys.stderr)


if __name__ == "__main__":
    main()
