#!/usr/bin/env python3
"""Checks Standard Webhooks signatures the way a receiver would, with nothing but Python's
standard library: an implementation independent of the Rust code that signs.

Reads the signing secret (whsec_<base64>) from the WEBHOOK_SECRET environment variable and a JSON
array of requests from standard input, each {"id", "timestamp", "signature", "body"} with the
body in base64. Exits 0 and prints "N signatures verified" if every request carries a v1
signature equal to base64(HMAC-SHA256(key, "{id}.{timestamp}." + body)) and a timestamp within
five minutes of now; otherwise prints the first that does not and exits 1.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time

TOLERANCE_SECONDS = 5 * 60


def main() -> int:
    secret = os.environ["WEBHOOK_SECRET"]
    if not secret.startswith("whsec_"):
        print("WEBHOOK_SECRET is not a whsec_ secret")
        return 1
    key = base64.b64decode(secret[len("whsec_"):])
    requests = json.load(sys.stdin)
    now = time.time()
    for n, request in enumerate(requests):
        body = base64.b64decode(request["body"])
        signed = f'{request["id"]}.{request["timestamp"]}.'.encode() + body
        expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        given = [
            part.split(",", 1)[1]
            for part in request["signature"].split(" ")
            if part.startswith("v1,")
        ]
        if not any(hmac.compare_digest(expected, g) for g in given):
            print(f"request {n} ({request['id']}): no v1 signature matches")
            return 1
        if abs(now - int(request["timestamp"])) > TOLERANCE_SECONDS:
            print(f"request {n} ({request['id']}): timestamp {request['timestamp']} is not recent")
            return 1
    print(f"{len(requests)} signatures verified")
    return 0


if __name__ == "__main__":
    sys.exit(main())
