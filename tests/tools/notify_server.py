#!/usr/bin/python3
"""A local GOV.UK Notify-compatible API for the integration tests (python3 stdlib only).

    notify_server.py --service-id SID --secret SECRET --port-file F --log F --control F

Listens on 127.0.0.1 (a spare port, written to --port-file) and answers
POST /v2/notifications/email and /v2/notifications/sms as Notify documents them:

  - the Authorization header must be `Bearer <JWT>`, HS256, signed with the secret, with
    iss = the service id and iat within 30 seconds of this machine's clock, else 403
    AuthError (as Notify does);
  - the body must be JSON with template_id (a UUID), email_address or phone_number,
    personalisation (an object) and reference, else 400 ValidationError;
  - otherwise the answer is 201 with an id, unless the control file says something else for
    the request's recipient.

The control file (JSON, read at every request) maps a recipient to a list of answers used
one per request, then "ok" (or what "*" says; a new "epoch" value starts every list
afresh): "ok", "400", "403", "429rate:<seconds>"
(RateLimitError with Retry-After), "429daily" (TooManyRequestsError), "500", "slow:<s>"
(accept, wait, then answer 201), "drop" (close the connection without an answer). An
answer ending in "*" repeats for ever.

Every request is appended to the log (JSON lines): time, path, the parsed body, whether
the JWT verified (and its iss, iat), the answer given, and whether the answer reached the
client ("delivered": false when the client had gone, e.g. after a timeout or a crash).
"""
import argparse
import base64
import os
import hashlib
import hmac
import json
import re
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
LOCK = threading.Lock()
USED = {}  # recipient -> answers used
EPOCH = [None]  # a new "epoch" in the control file starts every list afresh


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_jwt(auth, service_id, secret):
    """(ok, reason, claims)"""
    if not auth or not auth.startswith("Bearer "):
        return False, "no bearer token", {}
    parts = auth[7:].split(".")
    if len(parts) != 3:
        return False, "not a JWT", {}
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        sig = b64url_decode(parts[2])
    except Exception:
        return False, "undecodable", {}
    if header.get("alg") != "HS256" or header.get("typ") != "JWT":
        return False, "alg/typ", claims
    want = hmac.new(secret.encode(), (parts[0] + "." + parts[1]).encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(want, sig):
        return False, "signature", claims
    if claims.get("iss") != service_id:
        return False, "iss", claims
    iat = claims.get("iat")
    if not isinstance(iat, int) or abs(time.time() - iat) > 30:
        return False, "iat", claims
    return True, "", claims


def error_body(status, error, message):
    return {"errors": [{"error": error, "message": message}], "status_code": status}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY: the headers and the body are two writes; with Nagle the body waited for
    # the client's delayed ACK (40 ms a request on Linux)
    disable_nagle_algorithm = True

    def log_message(self, fmt, *args):
        pass

    def record(self, entry):
        with LOCK:
            with open(self.server.opts.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def answer(self, status, body, headers=None):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError, OSError):
            return False

    def next_answer(self, recipient):
        try:
            with open(self.server.opts.control) as f:
                control = json.load(f)
        except (OSError, ValueError):
            control = {}
        with LOCK:
            if control.get("epoch") != EPOCH[0]:
                EPOCH[0] = control.get("epoch")
                USED.clear()
            plan = control.get(recipient, [])
            n = USED.get(recipient, 0)
            if n < len(plan):
                a = plan[n]
                if a.endswith("*"):
                    return a[:-1]
                USED[recipient] = n + 1
                return a
            if plan and plan[-1].endswith("*"):
                return plan[-1][:-1]
            return control.get("*", "ok")

    def do_POST(self):
        opts = self.server.opts
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        entry = {"time": time.time(), "path": self.path, "delivered": True}
        ok, reason, claims = verify_jwt(self.headers.get("Authorization"), opts.service_id,
                                        opts.secret)
        entry.update(jwt_ok=ok, jwt_reason=reason, iss=claims.get("iss"), iat=claims.get("iat"),
                     content_type=self.headers.get("Content-Type"))
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        entry["body"] = body
        kind = {"/v2/notifications/email": "email_address",
                "/v2/notifications/sms": "phone_number"}.get(self.path)
        if kind is None:
            entry["answer"] = 404
            entry["delivered"] = self.answer(404, error_body(404, "NotFound", "no such path"))
            return self.record(entry)
        if not ok:
            entry["answer"] = 403
            entry["delivered"] = self.answer(403, error_body(403, "AuthError",
                                                             "Invalid token: " + reason))
            return self.record(entry)
        problems = []
        if not isinstance(body, dict):
            problems.append("body is not a JSON object")
            body = {}
        if not UUID_RE.match(str(body.get("template_id", ""))):
            problems.append("template_id is not a valid UUID")
        if not isinstance(body.get(kind), str) or not body.get(kind):
            problems.append(kind + " is a required property")
        if not isinstance(body.get("personalisation", {}), dict):
            problems.append("personalisation is not an object")
        if not isinstance(body.get("reference"), str):
            problems.append("reference is not a string")
        extra = set(body) - {"template_id", kind, "personalisation", "reference"}
        if extra:
            problems.append("unknown fields " + ",".join(sorted(extra)))
        if problems:
            entry["answer"] = 400
            entry["problems"] = problems
            entry["delivered"] = self.answer(400, error_body(400, "ValidationError",
                                                             "; ".join(problems)))
            return self.record(entry)
        a = self.next_answer(body[kind])
        entry["mode"] = a
        if a == "drop":
            entry["answer"] = None
            entry["delivered"] = False
            self.record(entry)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if a.startswith("slow:"):
            # Notify has it now, whatever happens to the answer
            self.record({"time": time.time(), "slow_accepted": True,
                         "reference": body["reference"]})
            time.sleep(float(a.split(":")[1]))
            a = "ok"
        if a == "ok":
            nid = str(uuid.uuid4())
            entry.update(answer=201, accepted=True, id=nid)
            entry["delivered"] = self.answer(201, {
                "id": nid, "reference": body["reference"],
                "content": {"body": "(rendered by Notify)", "from_number": "GOVUK"},
                "uri": "http://127.0.0.1/v2/notifications/" + nid,
                "template": {"id": body["template_id"], "version": 1, "uri": "x"}})
        elif a == "400":
            entry["answer"] = 400
            entry["delivered"] = self.answer(400, error_body(
                400, "BadRequestError", "Can't send to this recipient using a team-only API key"))
        elif a == "403":
            entry["answer"] = 403
            entry["delivered"] = self.answer(403, error_body(
                403, "AuthError", "Error: Your system clock must be accurate to within 30 seconds"))
        elif a.startswith("429rate"):
            entry["answer"] = 429
            ra = a.split(":")[1] if ":" in a else None
            entry["delivered"] = self.answer(429, error_body(
                429, "RateLimitError", "Exceeded rate limit for key type LIVE of 3000 requests per"
                " 60 seconds"), {"Retry-After": ra} if ra else None)
        elif a == "429daily":
            entry["answer"] = 429
            entry["delivered"] = self.answer(429, error_body(
                429, "TooManyRequestsError", "Exceeded send limits (250000) for today"))
        else:
            entry["answer"] = 500
            entry["delivered"] = self.answer(500, error_body(500, "Exception",
                                                             "Internal server error"))
        self.record(entry)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--service-id", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--control", required=True)
    opts = p.parse_args()
    # a deep accept queue: the daemon opens many connections at once
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    srv.opts = opts
    with open(opts.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(opts.port_file + ".tmp", opts.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
