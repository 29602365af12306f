#!/usr/bin/python3
"""An SMTP server for the integration tests, on Debian's aiosmtpd, that can refuse.

    smtp_server.py --host H --port P --maildir D --log F --control F
                   [--cert C --key K [--require-starttls]] [--auth USER:PASSWORD]

Stores accepted messages in a Maildir, like `python3 -m aiosmtpd -c Mailbox`, and writes
one JSON line per SMTP event to --log: ehlo, mail, rcpt, data, auth (with whether the
session was under TLS and who authenticated; an accepted message's data line carries its
Message-ID, so a test can count each message's deliveries). The control file (JSON, read at every
command) maps a recipient to a list of answers used one per message, then "ok": "ok",
"rcpt:<code>" (refuse RCPT TO with that reply), "data:<code>" (refuse the message after
DATA). With --cert/--key it offers STARTTLS (required for MAIL with --require-starttls);
with --auth it accepts AUTH PLAIN/LOGIN for that user and password only (over TLS).
"""
import argparse
import json
import mailbox
import re
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

LOCK = threading.Lock()
USED = {}
MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(<[^>\r\n]*>)", re.I | re.M)
REPLIES = {"550": "550 5.1.1 No such user here", "451": "451 4.3.0 Try again later",
           "554": "554 5.6.0 Message refused", "452": "452 4.3.1 Insufficient storage",
           "421": "421 4.3.2 Closing"}


class Handler:
    def __init__(self, opts):
        self.opts = opts
        self.box = mailbox.Maildir(opts.maildir, create=True)

    def log(self, session, **entry):
        entry.update(time=time.time(), tls=session.ssl is not None,
                     auth=(session.auth_data.login.decode()
                           if isinstance(session.auth_data, LoginPassword) else None))
        with LOCK:
            with open(self.opts.log, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def answer(self, rcpt):
        try:
            with open(self.opts.control) as f:
                control = json.load(f)
        except (OSError, ValueError):
            control = {}
        with LOCK:
            plan = control.get(rcpt, [])
            n = USED.get(rcpt, 0)
            if n < len(plan):
                USED[rcpt] = n + 1
                return plan[n]
        return "ok"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.log(session, event="ehlo")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.log(session, event="mail", address=address)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        a = self.answer(address)
        envelope.answers = getattr(envelope, "answers", {})
        envelope.answers[address] = a
        if a.startswith("rcpt:"):
            self.log(session, event="rcpt", address=address, answer=a)
            return REPLIES[a[5:]]
        self.log(session, event="rcpt", address=address, answer="250")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            a = envelope.answers.get(rcpt, "ok")
            if a.startswith("data:"):
                self.log(session, event="data", rcpt=envelope.rcpt_tos, answer=a)
                return REPLIES[a[5:]]
        content = envelope.original_content or envelope.content
        with LOCK:
            self.box.add(content)
        head = content.split(b"\r\n\r\n", 1)[0] if isinstance(content, bytes) else b""
        m = MESSAGE_ID.search(head)
        self.log(session, event="data", rcpt=envelope.rcpt_tos, answer="250",
                 mail_from=envelope.mail_from, message_id=m.group(1).decode() if m else None)
        return "250 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--maildir", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--control", required=True)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--require-starttls", action="store_true")
    p.add_argument("--auth")
    opts = p.parse_args()
    kw = {}
    if opts.cert:
        import ssl
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(opts.cert, opts.key)
        kw.update(tls_context=ctx, require_starttls=opts.require_starttls)
    if opts.auth:
        user, _, password = opts.auth.partition(":")

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
                  and auth_data.password.decode() == password)
            # handled=False: aiosmtpd answers a failure with 535 itself
            return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
        kw.update(authenticator=authenticator, auth_require_tls=True)
    ctrl = Controller(Handler(opts), hostname=opts.host, port=opts.port, **kw)
    ctrl.start()
    with open(opts.log, "a") as f:
        f.write(json.dumps({"event": "listening", "time": time.time()}) + "\n")
    try:
        threading.Event().wait()
    finally:
        ctrl.stop()


if __name__ == "__main__":
    main()
