"""Helpers of the notification integration tests (notify_*_test.py).

Each test runs frontdoord itself (the embedded Kafka cluster, so each daemon start has
fresh topics; everything that must survive a restart is in PostgreSQL) against its own
database on the postgres fixture, with FRONTDOOR_TEST_CLOCK setting the notification
clock, and produces events with kcat. Checks count: `check` records a failure with what
was expected, and `finish` exits non-zero when any failed or none ran.
"""
import email
import email.policy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

SRC = os.environ["FRONTDOOR_SOURCE_DIR"]
BUILD = os.environ["FRONTDOOR_BUILD_DIR"]
SERVICES = os.environ["FRONTDOOR_SERVICES_DIR"]
FD = os.path.join(BUILD, "frontdoord")

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what, file=sys.stderr, flush=True)
    return ok


def eq(want, got, what):
    return check(want == got, "%s: got %r, want %r" % (what, got, want))


def finish(name):
    print("%s: %d passed, %d failed" % (name, passed, failed))
    sys.exit(0 if failed == 0 and passed > 0 else 1)


def load_env(name):
    env = {}
    with open(os.path.join(SERVICES, name + ".env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v.strip('"')
    return env


def wait_until(cond, timeout, step=0.2):
    deadline = time.time() + timeout
    while True:
        v = cond()
        if v or time.time() >= deadline:
            return v
        time.sleep(step)


# ------------------------------------------------------------------ database

class Database:
    def __init__(self, tag):
        pg = load_env("postgres")
        self.base = pg["FD_PG_CONNINFO"]
        self.psql = os.path.join(pg["FD_PG_BIN"], "psql")
        self.name = ("fd_%s_%d" % (tag, os.getpid()))[:60]
        self.conninfo = self.base.replace("dbname=frontdoor", "dbname=" + self.name)
        self.admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)
        self.admin("CREATE DATABASE %s" % self.name)

    def admin(self, sql):
        subprocess.run([self.psql, "-XAtq", self.base, "-c", sql], check=True, capture_output=True)

    def rows(self, sql):
        out = subprocess.run([self.psql, "-XAtq", "-F", "\t", "-v", "ON_ERROR_STOP=1",
                              self.conninfo, "-c", sql], capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        return [l.split("\t") for l in out.stdout.splitlines() if l != ""]

    def one(self, sql):
        r = self.rows(sql)
        return r[0][0] if r else None

    def drop(self):
        try:
            self.admin("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name)
        except Exception:
            pass


# ------------------------------------------------------------------ configuration

def write_config(path, db, sections=None, directory=None, templates=None):
    """A configuration on the embedded cluster and db; `sections` maps a section name to
    extra `key = value` lines (a list)."""
    sections = sections or {}
    lines = ["[kafka]", "brokers = embedded", "embedded_partitions = 2",
             "rdkafka.session.timeout.ms = 6000"] + sections.get("kafka", [])
    lines += ["[database]", "conninfo = " + db.conninfo] + sections.get("database", [])
    # the HTTP listener on any free port unless the test names one
    sections.setdefault("http", ["listen = 127.0.0.1:0"])
    for sec in ("email", "sms", "http"):
        if sec in sections:
            lines += ["[" + sec + "]"] + sections[sec]
    lines += ["[routing]", "rules = %s/config/frontdoor.rules" % SRC,
              "directory = " + (directory or "%s/config/directory.json" % SRC),
              "templates = " + (templates or "%s/config/templates" % SRC),
              "[log]", "level = info"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def migrate(conf):
    out = subprocess.run([FD, "--config", conf, "--migrate"], capture_output=True, text=True)
    return check(out.returncode == 0, "frontdoord --migrate: %s %s" % (out.stdout, out.stderr))


# ------------------------------------------------------------------ the daemon

class Daemon:
    """frontdoord on the embedded cluster, its clock set to `clock` (RFC 3339)."""

    def __init__(self, conf, log, clock=None, env=None):
        self.log = log
        e = dict(os.environ)
        if clock:
            e["FRONTDOOR_TEST_CLOCK"] = clock
        e.update(env or {})
        self.logf = open(log, "w")
        self.p = subprocess.Popen([FD, "--config", conf], stdout=subprocess.DEVNULL,
                                  stderr=self.logf, env=e)
        self.bootstrap = None
        ok = wait_until(self._ready, 40)
        check(ok, "daemon ready (%s): %s" % (log, self.tail()))

    def text(self):
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()

    def tail(self, n=15):
        lines = [l for l in self.text().splitlines() if "kafka client" not in l]
        return "\n".join(lines[-n:])

    def _ready(self):
        t = self.text()
        if self.p.poll() is not None:
            return True  # died: the check above reports it with the log
        if self.bootstrap is None:
            for line in t.splitlines():
                if 'msg="kafka embedded cluster started"' in line:
                    self.bootstrap = line.split("bootstrap=")[1].split()[0]
        return 'msg="frontdoord ready"' in t

    def produce(self, topic, key, value):
        data = value if isinstance(value, bytes) else json.dumps(value).encode()
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(data)
            path = f.name
        out = subprocess.run(["kcat", "-b", self.bootstrap, "-P", "-t", topic, "-k", key, path],
                             capture_output=True)
        os.unlink(path)
        return check(out.returncode == 0, "kcat produce to %s: %s" % (topic, out.stderr))

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()
        return self.p.returncode

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.logf.close()


# ------------------------------------------------------------------ events

NS = uuid.UUID("3c0ffee0-0000-4000-8000-000000000000")


def eid(name):
    return str(uuid.uuid5(NS, name))


PII = ["Samwise", "Gamgee", "Rosie Cotton", "private summary words", "2017-05-02", "LA9 4DQ",
       "confidential outcome words"]


def referral(rid, occurred, level=2, needs=None, consent=True, sms=True, mobile="07700 900123",
             language="en", urn=None, dob="2017-05-02", risk=False, referrer_email="referrer@example.org",
             postcode="LA9 4DQ"):
    child = {"id": "C-" + rid, "first_name": "Samwise", "last_name": "Gamgee",
             "date_of_birth": dob, "postcode": postcode}
    if urn:
        child["school_urn"] = urn
    contact = {"name": "Rosie Cotton", "email": "rosie@example.org", "language": language}
    if mobile is not None:
        contact["mobile"] = mobile
    referrer = {"name": "Ms R. Referrer", "organisation": "Sample school"}
    if referrer_email is not None:
        referrer["email"] = referrer_email
    r = {"id": rid, "source": "school", "referrer": referrer, "child": child,
         "family": {"id": "F-" + rid, "contact": contact,
                    "consent": {"early_help": consent, "sms": sms, "email": True}},
         "needs": needs if needs is not None else ["parenting"],
         "safeguarding": {"immediate_risk": risk}, "summary": "private summary words"}
    if level is not None:
        r["level_of_need"] = level
    return {"schema_version": 1, "event_id": eid("ref:" + rid + ":" + occurred),
            "type": "referral.received", "occurred_at": occurred, "referral": r}


def case_event(name, typ, rid, occurred, **extra):
    e = {"schema_version": 1, "event_id": eid(name), "type": typ, "occurred_at": occurred,
         "case": {"referral_id": rid}}
    e.update(extra)
    return e


def booked(name, rid, occurred, appt, starts, location="Kendal Family Hub, Sample Street",
           with_="Family Help Worker"):
    return case_event(name, "appointment.booked", rid, occurred,
                      appointment={"id": appt, "starts_at": starts, "location": location,
                                   "with": with_})


def cancelled(name, rid, occurred, appt):
    return case_event(name, "appointment.cancelled", rid, occurred, appointment={"id": appt})


# ------------------------------------------------------------------ what was sent

def notifications(db, where="true"):
    """Rows as dicts, oldest first."""
    cols = ["id", "referral_id", "template", "channel", "recipient", "language", "state",
            "last_error", "attempts", "not_before", "red", "created_at", "sent_at", "provider",
            "provider_ref", "appointment_id", "personalisation"]
    sql = ("SELECT id, coalesce(referral_id, ''), template, channel, coalesce(recipient, ''),"
           " language, state, coalesce(last_error, ''), attempts,"
           " to_char(not_before AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), red,"
           " to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
           " coalesce(to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''),"
           " coalesce(provider, ''), coalesce(provider_ref, ''), coalesce(appointment_id, ''),"
           " personalisation::text FROM notifications WHERE %s ORDER BY seq" % where)
    out = []
    for r in db.rows(sql):
        d = dict(zip(cols, r))
        d["attempts"] = int(d["attempts"])
        d["red"] = d["red"] == "t"
        d["personalisation"] = json.loads(d["personalisation"])
        out.append(d)
    return out


def read_eml(path):
    with open(path, "rb") as f:
        return email.message_from_binary_file(f, policy=email.policy.default)


def read_sms(path):
    with open(path, encoding="utf-8") as f:
        head, _, body = f.read().partition("\n\n")
    h = dict(l.split(": ", 1) for l in head.splitlines())
    return h, body.rstrip("\n")


def spool_files(d):
    try:
        return sorted(n for n in os.listdir(d) if not n.startswith("."))
    except FileNotFoundError:
        return []


def tmpdir(prefix):
    d = tempfile.mkdtemp(prefix=prefix)
    return d


def rmtree(d):
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)
