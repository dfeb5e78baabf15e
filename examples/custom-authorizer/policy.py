#!/usr/bin/env python3
"""A stand-in policy service for the policy authorizer example, speaking the same JSON as an Open
Policy Agent data API: POST /v1/data/portcullis/authz with {"input": {...}}, answer
{"result": {"allow": ..., "tenants": [...], "reason": "..."}}.

The policy: each subject reads the tenants listed in GRANTS, with permission "read". It answers
with every tenant the subject may read, whatever the request named; the authorizer narrows that
to the requested ones. A reason never repeats the subject: with bearer identities it is a token.

Usage: policy.py [--port 8181]     (listens on 127.0.0.1 only)
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/v1/data/portcullis/authz"
GRANTS = {
    "acme-token": ["acme"],
    "ops-token": ["acme", "globex"],
}


def decide(question):
    subject = question.get("subject")
    if question.get("permission") != "read":
        return {"allow": False, "reason": "only read is granted"}
    tenants = GRANTS.get(subject)
    if not tenants:
        return {"allow": False, "reason": "subject has no grant"}
    return {"allow": True, "tenants": tenants, "reason": "granted by grants"}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        if self.path != PATH:
            self.reply(404, {})
            return
        length = int(self.headers.get("Content-Length", "0"))
        try:
            question = json.loads(self.rfile.read(length))["input"]
        except (ValueError, KeyError, TypeError):
            self.reply(400, {"code": "invalid_parameter", "message": "expected {\"input\": {...}}"})
            return
        self.reply(200, {"result": decide(question)})

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass  # the request line holds no secret, but the body would: log nothing


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8181)
    port = parser.parse_args().port
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"policy service on http://127.0.0.1:{port}{PATH}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
