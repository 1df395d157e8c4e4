#!/usr/bin/env python3
"""Follow storage indexes on a Swamp node's change feed and print each event as a JSON
line; keep the cursor in STATE_FILE and resume from it after a restart.

    feed_client.py NURL STATE_FILE SI [SI...]

Written from docs/feeds.md alone, with the standard library only (SSE over HTTP/1.1):
a sketch for client authors. It pins the server's certificate by the NURL's SPKI hash
(section 4), authorizes with the swissnum (section 5), saves the cursor of every event
it knows (section 2), skips event types and members it does not know (section 1), and
reconnects with jittered backoff (section 7).
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import random
import re
import ssl
import sys
import time
import urllib.parse

NURL = re.compile(r"pb://([A-Za-z0-9_-]{43})@(.+):(\d+)/([^/#]+)#v=1$")
WITH_CURSOR = {"slot_changed", "slot_deleted", "share_added", "corruption_advised",
               "synced", "progress", "reset"}
MAX_LINE = 1 << 20  # the server's events are a few hundred bytes: bound every line
IDLE = 45  # seconds; the server sends a keep-alive comment every 15


def der_item(der, i):
    """(start of value, end) of the DER item at offset i."""
    n, i = der[i + 1], i + 2
    if n & 0x80:
        k = n & 0x7F
        n, i = int.from_bytes(der[i:i + k], "big"), i + k
    return i, i + n


def spki_hash(cert_der):
    """base64url, unpadded, of SHA-256 of the certificate's SubjectPublicKeyInfo."""
    i = der_item(cert_der, 0)[0]  # into Certificate
    i = der_item(cert_der, i)[0]  # into TBSCertificate
    if cert_der[i] == 0xA0:  # [0] version
        i = der_item(cert_der, i)[1]
    for _ in range(5):  # serial, signature algorithm, issuer, validity, subject
        i = der_item(cert_der, i)[1]
    spki = cert_der[i:der_item(cert_der, i)[1]]
    return base64.urlsafe_b64encode(hashlib.sha256(spki).digest()).rstrip(b"=").decode()


def load_cursor(path):
    try:
        with open(path) as f:
            return json.load(f).get("cursor")
    except FileNotFoundError:
        return None


def save_cursor(path, cursor):
    """Atomically: a crash leaves the old cursor or the new one, never half a file."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"cursor": cursor}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def follow(nurl, state_file, sis):
    """One connection: returns (or raises) when it ends."""
    m = NURL.match(nurl)
    if not m:
        sys.exit(f"not a NURL: {nurl}")
    pin, host, port, swissnum = m.groups()
    tls = ssl.create_default_context()
    tls.check_hostname, tls.verify_mode = False, ssl.CERT_NONE  # the pin replaces the CA
    conn = http.client.HTTPSConnection(host.strip("[]"), int(port), context=tls, timeout=IDLE)
    try:
        conn.connect()
        if not hmac.compare_digest(spki_hash(conn.sock.getpeercert(binary_form=True)), pin):
            raise ConnectionError("the server's key does not match the NURL")
        query = [("si", si) for si in sis]
        cursor = load_cursor(state_file)
        if cursor:
            query.append(("since", cursor))
        auth = "Tahoe-LAFS " + base64.b64encode(swissnum.encode()).decode()
        conn.request("GET", "/storage/v1/feed?" + urllib.parse.urlencode(query),
                     headers={"Authorization": auth, "Accept": "text/event-stream"})
        response = conn.getresponse()
        if response.status != 200:
            raise ConnectionError(f"HTTP {response.status}: {response.read(300)!r}")
        data = []
        while True:
            line = response.readline(MAX_LINE)
            if not line:
                raise ConnectionError("stream ended")
            if not line.endswith(b"\n"):
                raise ConnectionError("line too long")
            line = line.rstrip(b"\r\n").decode()
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and data:  # a blank line ends an event
                event, data = json.loads("\n".join(data)), []
                kind = event.get("type")
                if kind == "close":
                    raise ConnectionError(f"closed: {event.get('reason')}")
                if kind not in WITH_CURSOR and kind not in ("snapshot", "error"):
                    continue  # a type this client does not know: skip it
                print(json.dumps(event), flush=True)
                if kind in WITH_CURSOR:
                    # On reset, a real client re-reads what it follows first.
                    save_cursor(state_file, event["cursor"])
            # other lines (id:, event:, retry:, ": keep-alive") need nothing here
    finally:
        conn.close()


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    backoff = 0.5
    while True:
        started = time.monotonic()
        try:
            follow(sys.argv[1], sys.argv[2], sys.argv[3:])
        except (OSError, ConnectionError, http.client.HTTPException, ValueError) as e:
            print(f"disconnected: {e}", file=sys.stderr, flush=True)
        backoff = 0.5 if time.monotonic() - started > 60 else min(backoff * 2, 30)
        time.sleep(backoff * random.uniform(0.5, 1.5))


if __name__ == "__main__":
    main()
