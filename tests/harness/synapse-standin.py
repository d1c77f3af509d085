#!/usr/bin/env python3
# A stand-in for hearth-node with the same command line, backed by Synapse: runs the cs-api
# suite against a reference homeserver, to tell a wrong test from a wrong hearth-node.
# Not used by `npm test`. Needs Synapse importable by the python3 first on PATH:
#   python3 -m venv /tmp/synapse-venv && /tmp/synapse-venv/bin/pip install matrix-synapse
#   PATH=/tmp/synapse-venv/bin:$PATH HEARTH_NODE_BIN=harness/synapse-standin.py npm test
# Config choices that differ from Synapse's defaults: rate limits lifted (tests send quickly),
# unauthenticated legacy media allowed (the suite checks /_matrix/media/v3/download), and a
# registration token created through the admin API (Synapse has no config option for one).
import argparse, os, secrets, signal, socket, subprocess, sys, time, urllib.request, json, hmac, hashlib

p = argparse.ArgumentParser()
p.add_argument("--data", required=True)
p.add_argument("--listen", required=True)
p.add_argument("--open-registration", action="store_true")
p.add_argument("--registration-token")
p.add_argument("--max-upload-bytes", type=int)
a = p.parse_args()

d = os.path.abspath(a.data)
os.makedirs(d, exist_ok=True)
idf = os.path.join(d, "identity")
if not os.path.exists(idf):
    open(idf, "w").write(secrets.token_hex(32))
name = open(idf).read().strip()
host, port = a.listen.rsplit(":", 1)
port = int(port)
if port == 0:  # Synapse cannot report a port it picked itself: pick one (racy, fine for tests)
    s = socket.socket(); s.bind((host, 0)); port = s.getsockname()[1]; s.close()

secret = "shared-secret-for-tests"
cfg = {
    "server_name": name,
    "pid_file": os.path.join(d, "homeserver.pid"),
    "listeners": [{"port": port, "bind_addresses": [host], "type": "http", "tls": False,
                   "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}],
    "database": {"name": "sqlite3", "args": {"database": os.path.join(d, "homeserver.db")}},
    "media_store_path": os.path.join(d, "media"),
    "signing_key_path": os.path.join(d, "signing.key"),
    "log_config": os.path.join(d, "log.yaml"),
    "report_stats": False,
    "enable_registration": bool(a.open_registration or a.registration_token),
    "enable_registration_without_verification": True,
    "registration_requires_token": bool(a.registration_token),
    "registration_shared_secret": secret,
    "macaroon_secret_key": "m" * 32,
    "form_secret": "f" * 32,
    "trusted_key_servers": [],
    "suppress_key_server_warning": True,
    "enable_authenticated_media": False,
    "max_upload_size": a.max_upload_bytes or 50 * 1024 * 1024,
    "rc_message": {"per_second": 1000, "burst_count": 1000},
    "rc_registration": {"per_second": 1000, "burst_count": 1000},
    "rc_login": {"address": {"per_second": 1000, "burst_count": 1000}, "account": {"per_second": 1000, "burst_count": 1000}, "failed_attempts": {"per_second": 1000, "burst_count": 1000}},
    "rc_joins": {"local": {"per_second": 1000, "burst_count": 1000}},
    "rc_invites": {"per_room": {"per_second": 1000, "burst_count": 1000}, "per_user": {"per_second": 1000, "burst_count": 1000}},
    "rc_key_requests": {"per_second": 1000, "burst_count": 1000},
    "rc_3pid_validation": {"per_second": 1000, "burst_count": 1000},
    "rc_delayed_event_mgmt": {"per_second": 1000, "burst_count": 1000},
}
open(os.path.join(d, "homeserver.yaml"), "w").write(json.dumps(cfg))
open(os.path.join(d, "log.yaml"), "w").write(json.dumps({
    "version": 1, "formatters": {"f": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}},
    "handlers": {"h": {"class": "logging.StreamHandler", "formatter": "f", "stream": "ext://sys.stderr"}},
    "root": {"level": "WARNING", "handlers": ["h"]}, "disable_existing_loggers": False}))
if not os.path.exists(cfg["signing_key_path"]):
    subprocess.run([sys.executable, "-m", "synapse.app.homeserver", "-c", os.path.join(d, "homeserver.yaml"), "--generate-keys"], check=True, stdout=sys.stderr)

child = subprocess.Popen([sys.executable, "-m", "synapse.app.homeserver", "-c", os.path.join(d, "homeserver.yaml")], stdout=sys.stderr)
stopping = False
def on_sig(sig, frame):
    global stopping
    stopping = True
    child.send_signal(signal.SIGTERM)
signal.signal(signal.SIGTERM, on_sig)
signal.signal(signal.SIGINT, on_sig)
base = f"http://{host}:{port}"
while True:
    if child.poll() is not None:
        sys.exit(child.returncode or 1)
    try:
        urllib.request.urlopen(base + "/_matrix/client/versions", timeout=1).read()
        break
    except Exception:
        time.sleep(0.2)

def post(path, body, token=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **({"Authorization": "Bearer " + token} if token else {})})
    return json.loads(urllib.request.urlopen(req).read())

if a.registration_token and not os.path.exists(os.path.join(d, "token-made")):
    nonce = json.loads(urllib.request.urlopen(base + "/_synapse/admin/v1/register").read())["nonce"]
    mac = hmac.new(secret.encode(), b"\x00".join([nonce.encode(), b"hearthadmin", b"adminpass123", b"admin"]), hashlib.sha1).hexdigest()
    tok = post("/_synapse/admin/v1/register", {"nonce": nonce, "username": "hearthadmin", "password": "adminpass123", "admin": True, "mac": mac})["access_token"]
    post("/_synapse/admin/v1/registration_tokens/new", {"token": a.registration_token}, tok)
    open(os.path.join(d, "token-made"), "w").write("1")

print(f"server name: {name}", flush=True)
print(f"listening on {base}", flush=True)
code = child.wait()
sys.exit(0 if stopping and code in (0, -signal.SIGTERM) else (code or 1))
