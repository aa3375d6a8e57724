"""Sends one request with http.client the way requests does (the whole
body, then the answer is read) and prints the outcome as JSON:
{"status", "connection", "body"} or {"error"}.

usage: sendall.py URL METHOD SIZE [chunked] [Name:value | Name=LENGTH ...]
CAFILE in the environment names the certificate to trust for https.
"""

import http.client
import json
import os
import ssl
import sys
from urllib.parse import urlsplit


def main():
    url, method, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    u = urlsplit(url)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=os.environ["CAFILE"])
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=60)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    chunked = False
    headers = {}
    for opt in sys.argv[4:]:
        if opt == "chunked":
            chunked = True
        elif ":" in opt:
            name, value = opt.split(":", 1)
            headers[name] = value
        else:  # Name=N: a value of N bytes, too long for an argument
            name, n = opt.split("=", 1)
            headers[name] = "z" * int(n)
    body = b"x" * size
    if chunked:
        # An iterable without a length goes out chunked.
        whole = body

        def pieces():
            for i in range(0, size, 1 << 20):
                yield whole[i:i + (1 << 20)]
        body = pieces()
    target = u.path + ("?" + u.query if u.query else "")
    try:
        conn.request(method, target, body=body, headers=headers)
        resp = conn.getresponse()
        out = {"status": resp.status, "connection": resp.getheader("Connection"),
               "body": resp.read().decode("latin-1")}
    except OSError as e:
        out = {"error": "%s: %s" % (type(e).__name__, e)}
    print(json.dumps(out))


main()
