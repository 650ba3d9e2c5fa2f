"""What the partition scripts need of the city around qrpark, standard library only:
an identity provider (an Ed25519 key made with `openssl`, its JWKS, and tokens signed
with it), a payment gateway double that accepts every payment, and JSON over HTTP.

Used by seed.py and sample.py (docs/operations.md, "A city on PostgreSQL").
"""
import base64
import http.server
import json
import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

ISSUER = "https://id.city.example"
AUDIENCE = "qrpark"
KID = "partition-bench"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Idp:
    """A city identity provider: `openssl` makes the key and signs the tokens."""

    def __init__(self, folder):
        self.folder = pathlib.Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = self.folder / "idp-key.pem"
        if not self.key.exists():
            subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(self.key)],
                           check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", str(self.key), "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.jwks = self.folder / "city-jwks.json"
        self.jwks.write_text(json.dumps({"keys": [{
            "kty": "OKP", "crv": "Ed25519", "x": b64url(der[-32:]), "kid": KID,
            "alg": "EdDSA", "use": "sig"}]}))

    def token(self, subject, roles=(), ttl=3600):
        now = int(time.time())
        header = {"alg": "EdDSA", "typ": "JWT", "kid": KID}
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": now, "nbf": now,
                  "exp": now + ttl, "roles": list(roles)}
        signing_input = (b64url(json.dumps(header).encode()) + "." +
                         b64url(json.dumps(claims).encode())).encode()
        # Ed25519 signs in one shot, and OpenSSL 3.0 reads a one-shot input from a file only.
        with tempfile.NamedTemporaryFile(dir=self.folder) as data:
            data.write(signing_input)
            data.flush()
            signature = subprocess.run(
                ["openssl", "pkeyutl", "-sign", "-rawin", "-inkey", str(self.key), "-in", data.name],
                check=True, capture_output=True).stdout
        return signing_input.decode() + "." + b64url(signature)

    def env(self):
        """What `qrpark serve` needs to trust this provider."""
        return {"QRPARK_CITY_JWKS": str(self.jwks), "QRPARK_CITY_ISSUER": ISSUER,
                "QRPARK_CITY_AUDIENCE": AUDIENCE}


class _Accept(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("content-length") or 0))
        body = b"{}"
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def gateway():
    """A payment gateway double on a free loopback port that accepts every payment and
    refund (2xx); its base URL."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Accept)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}"


def call(base, method, path, body=None, token=None, raw=None, headers=None):
    data = raw.encode() if raw is not None else (
        json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=600) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raise RuntimeError(f"{method} {path}: {e.code} {e.read()[:300]!r}") from None


def wait_up(base):
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"qrpark at {base} did not come up")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    """`qrpark serve` on DATABASE_URL for the length of a `with` block, trusting `idp`,
    paying through `payments` (a gateway URL) when given, with rate limits off (all load
    comes from one address) and room for long audit requests; its base URL. The data folder
    holds the key-encryption key: the same folder for the same database, always."""

    def __init__(self, binary, database_url, data_dir, idp, payments=None, log=None):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **idp.env(),
                    "QRPARK_DATABASE_URL": database_url,
                    "QRPARK_BIND": f"127.0.0.1:{self.port}",
                    "QRPARK_DATA_DIR": str(data_dir),
                    "QRPARK_RATE_LIMIT_PER_ADDRESS": "0",
                    "QRPARK_RATE_LIMIT_PER_IDENTITY": "0",
                    "QRPARK_REQUEST_TIMEOUT_SECS": "600",
                    "QRPARK_DATABASE_MAX_CONNECTIONS": "32"}
        if payments:
            self.env["QRPARK_CITY_PAYMENTS_URL"] = payments
        self.binary = binary
        self.log = log
        self.process = None

    def __enter__(self):
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        # Its own working folder: no qrpark.toml of the caller's is read.
        self.process = subprocess.Popen([self.binary, "serve"], env=self.env, stdout=out,
                                        stderr=out, cwd=tempfile.gettempdir())
        wait_up(self.base)
        return self

    def __exit__(self, *exc):
        # SIGTERM: requests finish, pending audit events are sealed, the pool closes.
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
