#!/usr/bin/env python3
"""Seeds a running `qrpark demo` for the load scripts and writes their data as Lua.

Creates one lot (no plate required) under the demo operator with the Beijing on-street
tariff and SPACES spaces, signs in one demo driver per space, and writes `data.lua`:
the lot id, each space's id and QR token, and each driver's token. Standard library only.

    setup.py BASE_URL[,BASE_URL...] OUT_DIR [SPACES] [THREADS]

With several qrpark processes (scale-out runs), each wrk instance drives one process and
owns the pairs of its slice (see startstop.lua); a pair's driver signs in at that
process, since each `qrpark demo` has its own identity provider key.
"""
import json
import pathlib
import sys
import urllib.request

DEMO_KEY = json.loads(
    (pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "demo.json").read_text()
)["operator"]["api_key"]
TARIFF = (
    pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "tariffs" / "beijing-on-street.json"
).read_text()


def call(base, method, path, body=None, token=None, raw=None):
    data = raw.encode() if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read() or b"null")


def lua_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def main():
    bases = [b.rstrip("/") for b in sys.argv[1].split(",")]
    base, out = bases[0], pathlib.Path(sys.argv[2])
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 512
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    lot = call(base, "POST", "/v1/operator/lots", {
        "name": "Load lot", "timezone": "Asia/Shanghai", "currency": "CNY",
        "plate_required": False,
    }, DEMO_KEY)
    call(base, "PUT", f"/v1/operator/lots/{lot['id']}/tariff", raw=TARIFF, token=DEMO_KEY)
    spaces = []
    for first in range(0, count, 100):
        codes = [f"L{n:05d}" for n in range(first, min(first + 100, count))]
        spaces += call(base, "POST", f"/v1/operator/lots/{lot['id']}/spaces",
                       {"codes": codes}, DEMO_KEY)["spaces"]
    drivers = [
        call(bases[n % (threads * len(bases)) // threads], "POST", "/v1/demo/token",
             {"subject": f"load-driver-{n}"})["token"]
        for n in range(count)
    ]
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"lot_id = {lua_string(lot['id'])}", "spaces = {"]
    for space in spaces:
        token = space["qr_url"].rsplit("/", 1)[1]
        lines.append(f"  {{id = {lua_string(space['id'])}, qr = {lua_string(token)}}},")
    lines.append("}")
    lines.append("drivers = {")
    lines += [f"  {lua_string(t)}," for t in drivers]
    lines.append("}")
    (out / "data.lua").write_text("\n".join(lines) + "\n")
    print(f"seeded lot {lot['id']} with {len(spaces)} spaces and {len(drivers)} drivers")


if __name__ == "__main__":
    main()
