#!/usr/bin/python3
"""Delivery by SMTP (issue 7), through libcurl on the daemon's loop, with a real
PostgreSQL (postgres fixture) and the daemon on its embedded Kafka cluster:

  S1  the aiosmtpd fixture (scripts/services smtp, loopback, no TLS offered): each
      message in its Maildir with From, To, Subject, Date, Message-ID from the
      notification id, MIME headers and a quoted-printable body that decodes to the
      rendered template; provider_ref is the Message-ID;
  S2  tests/tools/smtp_server.py refusing on purpose: a 5xx reply to RCPT or DATA is
      `failed` at once and never retried, a 4xx reply is retried with backoff and
      delivered later; a relay that refuses connections is retried;
  S3  a relay on a non-loopback address that does not offer STARTTLS gets nothing: no
      MAIL, no RCPT, no message in clear; the row waits and the log says why;
  S4  the same address with STARTTLS (a test CA) and AUTH with the password from a file:
      delivered under TLS as the configured user; a wrong password (535) is `failed`.
"""
import email.utils
import json
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import notify_lib
from notify_lib import (PII, SRC, Daemon, Database, check, eq, finish, load_env, migrate,
                        notifications, referral, rmtree, tmpdir, wait_until, write_config)

TMP = tmpdir("fd-notify-smtp-")
DB = Database("notify_smtp")
REFERRALS = "frontdoor.referrals"
LOGS = []
SERVERS = []


def spare_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def non_loopback_address():
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if "inet" in parts:
            return parts[parts.index("inet") + 1].split("/")[0]
    return None


def conf(name, smtp_url, extra=None):
    email = ["provider = smtp", "smtp_url = " + smtp_url, "from = family-help@example.org",
             "timeout_seconds = 5"] + (extra or [])
    return write_config(os.path.join(TMP, name + ".conf"), DB, {
        "email": email, "sms": ["spool_dir = " + os.path.join(TMP, "sms")]})


def start(cfg, clock, name):
    log = os.path.join(TMP, name + ".log")
    LOGS.append(log)
    return Daemon(cfg, log, clock=clock)


def smtp_server(name, host, control, cert=None, key=None, auth=None):
    port = spare_port(host)
    d = os.path.join(TMP, name)
    os.makedirs(d)
    log = os.path.join(d, "events.jsonl")
    args = ["/usr/bin/python3", os.path.join(SRC, "tests", "tools", "smtp_server.py"),
            "--host", host, "--port", str(port), "--maildir", os.path.join(d, "maildir"),
            "--log", log, "--control", os.path.join(d, "control.json")]
    with open(os.path.join(d, "control.json"), "w") as f:
        json.dump(control, f)
    if cert:
        args += ["--cert", cert, "--key", key, "--require-starttls"]
    if auth:
        args += ["--auth", auth]
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "err"), "w"))
    SERVERS.append(p)
    check(wait_until(lambda: os.path.exists(log), 15), "smtp server %s started" % name)
    return port, d, log


def events(log):
    with open(log) as f:
        return [json.loads(l) for l in f if l.strip()]


def maildir_messages(md):
    msgs = []
    for sub in ("new", "cur"):
        dd = os.path.join(md, sub)
        for n in sorted(os.listdir(dd)) if os.path.isdir(dd) else []:
            msgs.append(notify_lib.read_eml(os.path.join(dd, n)))
    return msgs


def rows_of(rid):
    return notifications(DB, "referral_id = '%s'" % rid)


def row(rid, template="case_allocated"):
    r = [x for x in rows_of(rid) if x["template"] == template and x["channel"] == "email"]
    return r[0] if len(r) == 1 else None


# ------------------------------------------------------------------ S1
def phase_1():
    smtp = load_env("smtp")
    d = start(conf("s1", smtp["FD_SMTP_URL"]), "2026-11-24T10:00:00Z", "s1")
    at = "2026-11-24T09:59:00Z"
    refs = ["REF-NS-RED", "REF-NS-SCHOOL", "REF-NS-TRIAGE"]
    d.produce(REFERRALS, refs[0], referral(refs[0], at, risk=True))
    d.produce(REFERRALS, refs[1], referral(refs[1], at, needs=["school_attendance"], urn="900301"))
    d.produce(REFERRALS, refs[2], referral(refs[2], at, level=None))
    want = 6  # alert, 2 x (allocated or triage), 3 acknowledgements
    check(wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE channel = 'email'"
                                    " AND state = 'sent'") == str(want), 30),
          "S1: six emails sent by SMTP")
    eq(0, d.stop(), "S1: exit status")
    rows = notifications(DB, "channel = 'email'")
    byid = {}
    for m in maildir_messages(smtp["FD_SMTP_MAILDIR"]):
        mid = m["Message-ID"] or ""
        byid[mid] = m
    for r in rows:
        mid = "<%s@example.org>" % r["id"]
        eq(("sent", "smtp", mid, 1), (r["state"], r["provider"], r["provider_ref"], r["attempts"]),
           "S1: %s %s recorded" % (r["referral_id"], r["template"]))
        m = byid.get(mid)
        if not check(m is not None, "S1: %s in the Maildir" % mid):
            continue
        eq(r["recipient"], m["To"], "S1: To")
        eq("family-help@example.org", m["From"], "S1: From")
        eq("1.0", m["MIME-Version"], "S1: MIME")
        eq("text/plain", m.get_content_type(), "S1: plain text")
        eq("quoted-printable", m["Content-Transfer-Encoding"], "S1: quoted-printable")
        eq("utf-8", m.get_content_charset(), "S1: UTF-8")
        eq("auto-generated", m["Auto-Submitted"], "S1: Auto-Submitted")
        eq(r["template"], m["X-Frontdoor-Template"], "S1: template header")
        check(email.utils.parsedate_to_datetime(m["Date"]) is not None, "S1: Date parses")
        body = m.get_content()
        check(r["referral_id"] in m["Subject"] or r["referral_id"] in body,
              "S1: the message names the referral")
        eq([], [p for p in PII if p in m["Subject"] + body], "S1: no personal data in the message")
    alert = row("REF-NS-RED", "safeguarding_alert")
    m = byid.get("<%s@example.org>" % alert["id"])
    eq("URGENT safeguarding referral REF-NS-RED, decision due by 1:59pm on Tuesday 24 November"
       " 2026", m["Subject"] if m else None, "S1: the alert's subject")
    check(m is not None and "Rule: safeguarding\n" in m.get_content(), "S1: the alert's body")


# ------------------------------------------------------------------ S2
def phase_2():
    port, sd, log = smtp_server("s2", "127.0.0.1", {
        "tfh-eden@example.org": ["rcpt:550"], "hub-barrow@example.org": ["rcpt:451"],
        "hub-penrith@example.org": ["data:554"], "hub-appleby@example.org": ["data:452"]})
    url = "smtp://127.0.0.1:%d" % port
    d = start(conf("s2", url), "2026-11-24T11:00:00Z", "s2")
    at = "2026-11-24T10:59:00Z"
    refs = {"REF-NS-EDEN": dict(level=3, postcode="CA11 1AA"),
            "REF-NS-BARROW": dict(postcode="LA14 1AA"),
            "REF-NS-PENRITH": dict(postcode="CA11 1AA"),
            "REF-NS-APPLEBY": dict(postcode="CA16 1AA")}
    for rid, kw in refs.items():
        d.produce(REFERRALS, rid, referral(rid, at, referrer_email=None, **kw))
    check(wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE referral_id IN"
                                    " ('REF-NS-EDEN', 'REF-NS-BARROW', 'REF-NS-PENRITH',"
                                    " 'REF-NS-APPLEBY') AND template = 'case_allocated' AND"
                                    " attempts = 1 AND state <> 'sending'") == "4", 30),
          "S2: four messages answered")
    eq(0, d.stop(), "S2: exit status")
    for rid, state, err in (("REF-NS-EDEN", "failed", "smtp 550"),
                            ("REF-NS-PENRITH", "failed", "smtp 554"),
                            ("REF-NS-BARROW", "queued", "smtp 451"),
                            ("REF-NS-APPLEBY", "queued", "smtp 452")):
        r = row(rid)
        eq((state, err, 1), (r["state"], r["last_error"], r["attempts"]), "S2: %s" % rid)
        if state == "queued":
            wait = float(DB.one("SELECT extract(epoch FROM not_before - updated_at) FROM"
                                " notifications WHERE id = '%s'" % r["id"]))
            check(1 <= wait <= 30, "S2: %s backs off %s s (1..30)" % (rid, wait))
    d = start(conf("s2b", url), "2026-11-24T11:02:00Z", "s2b")
    check(wait_until(lambda: row("REF-NS-BARROW")["state"] == "sent" and
                     row("REF-NS-APPLEBY")["state"] == "sent", 20),
          "S2b: the 4xx ones delivered on retry")
    time.sleep(1)
    eq(0, d.stop(), "S2b: exit status")
    ev = events(log)
    rc = {}
    for e in ev:
        if e["event"] == "rcpt":
            rc[e["address"]] = rc.get(e["address"], 0) + 1
    eq({"tfh-eden@example.org": 1, "hub-penrith@example.org": 1, "hub-barrow@example.org": 2,
        "hub-appleby@example.org": 2}, rc, "S2b: 5xx never retried, 4xx retried once")
    for rid in ("REF-NS-EDEN", "REF-NS-PENRITH"):
        eq(("failed", 1), (row(rid)["state"], row(rid)["attempts"]), "S2b: %s still failed" % rid)
    got = [m["To"] for m in maildir_messages(os.path.join(sd, "maildir"))]
    eq(sorted(["hub-barrow@example.org", "hub-appleby@example.org"]), sorted(got),
       "S2b: only the retried messages reached the Maildir")

    # a relay that refuses connections: retried, nothing lost
    dead = "smtp://127.0.0.1:%d" % spare_port()
    d = start(conf("s2c", dead), "2026-11-24T11:10:00Z", "s2c")
    d.produce(REFERRALS, "REF-NS-DEAD", referral("REF-NS-DEAD", "2026-11-24T11:09:00Z",
                                                 referrer_email=None))
    check(wait_until(lambda: (row("REF-NS-DEAD") or {}).get("attempts") == 1 and
                     row("REF-NS-DEAD")["state"] == "queued", 20), "S2c: tried once")
    eq(0, d.stop(), "S2c: exit status")
    eq("smtp: connection error", row("REF-NS-DEAD")["last_error"], "S2c: connection error")


# ------------------------------------------------------------------ S3, S4
def make_cert(ip):
    key, cert = os.path.join(TMP, "relay.key"), os.path.join(TMP, "relay.crt")
    out = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                          "-keyout", key, "-out", cert, "-subj", "/CN=frontdoor test relay",
                          "-addext", "subjectAltName=IP:" + ip], capture_output=True, text=True)
    check(out.returncode == 0, "test certificate: %s" % out.stderr)
    return cert, key


def phase_3_4():
    ip = non_loopback_address()
    if not check(ip is not None, "a non-loopback address to test STARTTLS against"):
        return
    # S3: no STARTTLS offered
    port, sd, log = smtp_server("s3", ip, {})
    d = start(conf("s3", "smtp://%s:%d" % (ip, port)), "2026-11-24T12:00:00Z", "s3")
    d.produce(REFERRALS, "REF-NS-CLEAR", referral("REF-NS-CLEAR", "2026-11-24T11:59:00Z",
                                                  referrer_email=None))
    check(wait_until(lambda: (row("REF-NS-CLEAR") or {}).get("attempts") == 1 and
                     row("REF-NS-CLEAR")["state"] == "queued", 20), "S3: tried once")
    eq(0, d.stop(), "S3: exit status")
    eq("smtp: the relay does not offer STARTTLS", row("REF-NS-CLEAR")["last_error"],
       "S3: refused for want of STARTTLS")
    ev = [e["event"] for e in events(log) if e["event"] != "listening"]
    check("ehlo" in ev, "S3: the daemon did connect (%s)" % ev)
    eq([], [e for e in ev if e in ("mail", "rcpt", "data")], "S3: nothing sent in clear")
    check('level=error msg="SMTP relay refused: it does not offer STARTTLS' in d.text(),
          "S3: the log says why")

    # S4: STARTTLS and AUTH
    cert, key = make_cert(ip)
    pw = os.path.join(TMP, "smtp-password")
    with open(pw, "w") as f:
        f.write("correct horse battery\n")
    os.chmod(pw, 0o600)
    port, sd, log = smtp_server("s4", ip, {}, cert=cert, key=key,
                                auth="frontdoord:correct horse battery")
    url = "smtp://%s:%d" % (ip, port)
    extra = ["smtp_ca_file = " + cert, "smtp_username = frontdoord", "smtp_password_file = " + pw]
    d = start(conf("s4", url, extra), "2026-11-24T12:10:00Z", "s4")
    check(wait_until(lambda: row("REF-NS-CLEAR")["state"] == "sent", 20),
          "S4: delivered over STARTTLS")
    eq(0, d.stop(), "S4: exit status")
    # REF-NS-DEAD's message, waiting since S2c, goes to this relay too
    check(wait_until(lambda: row("REF-NS-DEAD")["state"] == "sent", 10), "S4: the waiting one too")
    data = [e for e in events(log) if e["event"] == "data"]
    eq([(True, "frontdoord", "250")] * 2, [(e["tls"], e["auth"], e["answer"]) for e in data],
       "S4: the messages went under TLS, authenticated as the configured user")
    msgs = maildir_messages(os.path.join(sd, "maildir"))
    eq(sorted("<%s@example.org>" % row(r)["id"] for r in ("REF-NS-CLEAR", "REF-NS-DEAD")),
       sorted(m["Message-ID"] for m in msgs), "S4: the messages in the Maildir")
    check("correct horse" not in d.text(), "S4: the password is never logged")

    with open(pw, "w") as f:
        f.write("wrong password\n")
    d = start(conf("s4b", url, extra), "2026-11-24T12:20:00Z", "s4b")
    d.produce(REFERRALS, "REF-NS-AUTH", referral("REF-NS-AUTH", "2026-11-24T12:19:00Z",
                                                 referrer_email=None))
    check(wait_until(lambda: (row("REF-NS-AUTH") or {}).get("state") == "failed", 20),
          "S4b: a refused login is failed (SMTP 5xx)")
    eq(0, d.stop(), "S4b: exit status")
    eq("smtp 535", row("REF-NS-AUTH")["last_error"], "S4b: the 535 reply recorded")


def main():
    try:
        migrate(conf("migrate", "smtp://127.0.0.1:25"))
        phase_1()
        phase_2()
        phase_3_4()
        logs = "".join(open(l, encoding="utf-8", errors="replace").read() for l in LOGS)
        leaked = [p for p in PII + ["referrer@example.org", "safeguarding-hub@example.org",
                                    "tfh-eden@example.org"] if p in logs]
        eq([], leaked, "no personal data in the daemon's logs")
    except Exception as e:
        import traceback
        traceback.print_exc()
        check(False, "notify_smtp raised %r" % e)
    finally:
        for p in SERVERS:
            p.terminate()
            p.wait()
        if notify_lib.failed:
            for l in LOGS[-2:]:
                print("--- " + l, file=sys.stderr)
                print("\n".join(x for x in open(l).read().splitlines()
                                if "kafka client" not in x)[-3000:], file=sys.stderr)
        DB.drop()
        rmtree(TMP)
    finish("notify_smtp")


if __name__ == "__main__":
    main()
