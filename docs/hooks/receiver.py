#!/usr/bin/env python3
"""receiver.py: an example webhook receiver for Ferry's hooks, standard library only.

Ferry POSTs JSON ({"event", "hook", "migrationId", "hostId", "host", "state",
"waveId", "attempt", "sentAt"}) with the headers X-Ferry-Event,
X-Ferry-Timestamp and X-Ferry-Signature = "sha256=" + hex(HMAC-SHA256(secret,
timestamp + "." + body)). Answer 2xx for success; anything else (or no answer
within the hook's timeout) is a failure, retried `retries` times, and a
must-succeed hook's failure undoes the host's cutover.

Two handlers:
  /check-http   after_launch: GET http://<host>.<domain>/health on the launched
                machine (TARGET_DOMAIN) and fail unless it answers 200.
  /update-dns   after_cutover: point <host>.<zone> at the new address with
                nsupdate (DNS_ZONE, DNS_SERVER, NEW_ADDRESS_OF_<HOST> or a lookup).

Run behind TLS (Ferry only calls https URLs):
  HOOK_SECRET=... python3 receiver.py --cert cert.pem --key key.pem --port 8443
"""
import argparse, hashlib, hmac, http.server, json, os, ssl, subprocess, time, urllib.request

SECRET = os.environ.get("HOOK_SECRET", "").encode()
MAX_SKEW = 300  # seconds: refuse replays of old deliveries


def verified(headers, body):
    ts = headers.get("X-Ferry-Timestamp", "")
    sig = headers.get("X-Ferry-Signature", "")
    if not ts.isdigit() or abs(time.time() - int(ts)) > MAX_SKEW:
        return False
    want = "sha256=" + hmac.new(SECRET, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, sig)


def check_http(p):
    url = "http://%s.%s/health" % (p["host"], os.environ.get("TARGET_DOMAIN", "migrated.internal"))
    with urllib.request.urlopen(url, timeout=10) as r:
        if r.status != 200:
            raise RuntimeError("%s answered %d" % (url, r.status))
    return "%s answered 200" % url


def update_dns(p):
    zone, server = os.environ["DNS_ZONE"], os.environ.get("DNS_SERVER", "127.0.0.1")
    addr = os.environ["NEW_ADDRESS_OF_" + p["host"].upper().replace("-", "_")]
    script = "server %s\nzone %s\nupdate delete %s.%s A\nupdate add %s.%s 300 A %s\nsend\n" % (
        server, zone, p["host"], zone, p["host"], zone, addr)
    subprocess.run(["nsupdate"], input=script.encode(), check=True, timeout=20)
    return "%s.%s -> %s" % (p["host"], zone, addr)


ROUTES = {"/check-http": check_http, "/update-dns": update_dns}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(min(int(self.headers.get("Content-Length", 0)), 1 << 20))
        if not verified(self.headers, body):
            return self.answer(401, "bad signature or stale timestamp")
        fn = ROUTES.get(self.path)
        if fn is None:
            return self.answer(404, "no hook at " + self.path)
        try:
            self.answer(200, fn(json.loads(body)))
        except Exception as e:  # the message is kept in Ferry's delivery log
            self.answer(502, "%s failed: %s" % (self.path, e))

    def answer(self, code, text):
        b = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8443)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    a = ap.parse_args()
    if not SECRET:
        raise SystemExit("set HOOK_SECRET to the secret given to the hook")
    srv = http.server.ThreadingHTTPServer(("", a.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.serve_forever()
