#!/usr/bin/python3
"""Reliability runs: nothing is lost and nothing is done twice, whatever happens.

    chaos.py [--fast] [--referrals N] [--case-events C] [--seed S] [SCENARIO...]

Scenarios (all by default, in this order): crash, scaleout, shutdown, outages. Each starts from an empty
database and topics of its own, produces a stream of N referrals (the spec's samples in
turn, unique ids, each family its own mobile) and C case events on their cases (consents,
triage decisions, appointments, step-ups and closures, valid for the state each case will
be in), does its harm while the daemons work through the stream, waits for the end and
checks the end state:
  - one case per referral, every event processed exactly once (processed_events);
  - one decision per decision-making event (a referral or a re-routing case event);
  - every decision published to frontdoor.decisions (duplicates there counted: consumers
    deduplicate by event_id); every outbox row published; nothing left held;
  - notifications: one row per (cause, template, channel) and exactly the rows the
    decisions and bookings call for; every row in a final state, none failed; every sent
    email accepted by the SMTP server (tests/tools/smtp_server.py, counted by Message-ID)
    and every sent text by the Notify server (tests/tools/notify_server.py, which checks
    the JWT; counted by reference), to the row's recipient; messages a provider accepted
    twice counted, each explained by the documented window (README, "The one accepted
    duplicate": a kill -9 or a lost answer between the provider's acceptance and the row
    marked sent), at most one per in-flight send per kill, none where nothing was killed
    and no answer was lost; every retry spaced as the backoff says and not tried before
    its not_before.
The daemons send email by SMTP and texts through Notify; their notification clock is set
(FRONTDOOR_TEST_CLOCK) to a Tuesday morning in London that runs on across restarts, so
family texts fall inside 08:00-20:00 and no decision deadline passes, whenever the run is.
The harm:
  crash     kill -9 the daemon at 5 random moments (2 with --fast), restarting it at once;
  scaleout  two daemons in one group, a third added mid-stream, one killed (-9);
  outages   the SMTP server down for 60 s (20 s with --fast) from the start of the stream;
            Notify answering 500, 429 with Retry-After, slower than the timeout and 403 for
            some families' texts; PostgreSQL restarted mid-stream; a Kafka broker down for
            20 s (5 with --fast); Kafka request errors injected; /readyz answering 503 while
            the database or Kafka is gone and 200 while only a provider is, and the daemon's
            memory staying bounded;
  shutdown  SIGTERM under full load: exit 0 within 30 s, the rest done by the next run.
A run whose harm touches only its own daemons (crash, scaleout, shutdown) settles (its
notifications done, its daemons stopped, its end state checked) while the next scenario
runs, so the 70 s lease of a killed daemon's sends is not waited for one run after another;
every run settles before the outages, which harm the services all share.
Prints the counts of each run; exits 1 when a check failed.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid

SRC = os.environ.get("FRONTDOOR_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BUILD = os.environ.get("FRONTDOOR_BUILD_DIR", os.path.join(SRC, "build"))
SPEC = os.environ.get("FRONTDOOR_SPEC_DIR", os.path.join(SRC, "..", "shared", "spec"))
FD = os.path.join(BUILD, "frontdoord")
MOCK = os.path.join(BUILD, "frontdoor-mock-kafka")
TOOLS = os.path.join(SRC, "tests", "tools")

# Notification settings of every run. A send slower than TIMEOUT_S is given up and retried;
# a claimed row whose daemon died is claimed again after its lease, 2 x TIMEOUT_S + 60 s.
TIMEOUT_S = 5
LEASE_S = 2 * TIMEOUT_S + 60
IN_FLIGHT = 20  # sends at once per channel and daemon
# Notify answers of the outages run: Retry-After of the 429s, the slow answer's delay
RETRY_AFTER_S = 20
SLOW_S = TIMEOUT_S + 3
SID = "26785a09-ab16-4eb0-8407-a37497a57506"
SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
SMS_TEMPLATES = ["safeguarding_alert", "safeguarding_alert_failed", "appointment_booked",
                 "appointment_reminder", "appointment_cancelled"]
# The notification clock at the start of a chaos run: Tuesday 24 November 2026, 09:30 in
# London (GMT): inside the family-text window (08:00-20:00) for ten hours, after the case
# events' occurred_at, before the first decision deadline (amber: 17:00 that day).
CLOCK_START = 1795512600.0  # 2026-11-24T09:30:00Z
FINAL = ("sent", "delivered", "skipped", "failed", "cancelled")

passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
    print(("  ok    " if ok else "  FAIL  ") + what, flush=True)


def say(*a):
    print(*a, flush=True)


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def parse_rfc3339(s):
    """UTC seconds of 2026-11-24T09:30:00Z or 2026-11-24T09:30:00.123Z."""
    base, _, frac = s.rstrip("Z").partition(".")
    t = time.mktime(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) - time.timezone
    return t + (float("0." + frac) if frac else 0.0)


def spare_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def jsonl(path, having=None):
    """The JSON lines of a file (only those holding the text `having`)."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                if having is not None and having not in line:
                    continue
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut short by a stop
    except FileNotFoundError:
        pass
    return out


# ------------------------------------------------------------------ services
class Postgres:
    """A PostgreSQL of the run's own (scripts/services), so it can be restarted."""

    def __init__(self, tmp):
        self.svc = os.path.join(tmp, "svc")
        self.env = dict(os.environ, FRONTDOOR_SERVICES_DIR=self.svc)
        self.services = os.path.join(SRC, "scripts", "services")
        subprocess.run([self.services, "postgres", "start"], env=self.env, check=True,
                       capture_output=True)
        self.pg = {}
        with open(os.path.join(self.svc, "postgres.env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                self.pg[k] = v.strip('"')
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.pg_ctl = [os.path.join(self.pg["FD_PG_BIN"], "pg_ctl"), "-D",
                       os.path.join(self.pg["FD_PG_DIR"], "data")]

    def conninfo(self, db):
        return "host=127.0.0.1 port=%s user=postgres dbname=%s" % (self.pg["FD_PG_PORT"], db)

    def sql(self, db, q):
        out = subprocess.run([os.path.join(self.pg["FD_PG_BIN"], "psql"), "-XAtq", "-v",
                              "ON_ERROR_STOP=1", self.conninfo(db), "-c", q],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(out.stderr.strip())
        return out.stdout.strip()

    def count(self, db, q):
        try:
            return int(self.sql(db, q))
        except (RuntimeError, ValueError):
            return -1

    def stop(self, mode="immediate"):
        subprocess.run(self.as_pg + self.pg_ctl + ["-m", mode, "-w", "stop"], check=True,
                       capture_output=True)

    def start(self):
        opts = ("-c listen_addresses=127.0.0.1 -c port=%s -c unix_socket_directories=%s"
                " -c max_connections=200" % (self.pg["FD_PG_PORT"], self.pg["FD_PG_DIR"]))
        subprocess.run(self.as_pg + self.pg_ctl + ["-l", os.path.join(self.pg["FD_PG_DIR"],
                       "server.log"), "-w", "-o", opts, "start"], check=True, capture_output=True)

    def close(self):
        subprocess.run([self.services, "postgres", "stop"], env=self.env, capture_output=True)


class Kafka:
    """frontdoor-mock-kafka with three brokers and its control channel."""

    def __init__(self, tmp, topics):
        self.out = open(os.path.join(tmp, "mock.out"), "w+")
        args = [MOCK, "--brokers", "3", "--control"]
        for t in topics:
            args += ["--topic", t]
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=self.out,
                                  stderr=subprocess.DEVNULL, text=True)
        self.bootstrap = None
        for _ in range(100):
            self.out.seek(0)
            first = self.out.readline().strip()
            if first.startswith("127.0.0.1:"):
                self.bootstrap = first
                break
            time.sleep(0.1)
        if not self.bootstrap:
            raise RuntimeError("mock cluster did not start")
        self.answers = 1

    def control(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        self.answers += 1
        for _ in range(100):
            self.out.seek(0)
            lines = self.out.read().splitlines()
            if len(lines) >= self.answers:
                return lines[self.answers - 1]
            time.sleep(0.05)
        return "no answer"

    def produce(self, topic, path):
        with open(path, "rb") as f:  # one message a line (a file argument is one message)
            subprocess.run(["kcat", "-b", self.bootstrap, "-P", "-t", topic, "-K", "\t"],
                           stdin=f, check=True, stderr=subprocess.DEVNULL)

    def read(self, topic):
        """Every message of a topic: (key, payload) pairs. Request errors pushed into the
        cluster for the daemon (push_errors) may be left over when it finished first;
        kcat stops at the first, so it reads again until a read goes through."""
        for _ in range(10):
            out = subprocess.run(["kcat", "-b", self.bootstrap, "-C", "-t", topic, "-o",
                                  "beginning", "-e", "-q", "-f", "%k\t%s\n"],
                                 capture_output=True, timeout=120)
            if out.returncode == 0:
                break
        return [l.split(b"\t", 1) for l in out.stdout.splitlines() if b"\t" in l]

    def close(self):
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()


class Smtp:
    """tests/tools/smtp_server.py (aiosmtpd) on a port of its own, stopped and started
    again for the outage; its log has a line per accepted message with the Message-ID."""

    def __init__(self, tmp):
        self.port = spare_port()
        self.maildir = os.path.join(tmp, "maildir")
        self.log = os.path.join(tmp, "smtp.jsonl")
        self.control = os.path.join(tmp, "smtp-control.json")
        with open(self.control, "w") as f:
            f.write("{}")
        self.out = open(os.path.join(tmp, "smtp.out"), "ab")
        self.p = None
        self.stops = []  # when it was stopped (a message it took may not have been answered)
        self.start()

    def start(self):
        self.p = subprocess.Popen(["/usr/bin/python3", os.path.join(TOOLS, "smtp_server.py"),
                                   "--host", "127.0.0.1", "--port", str(self.port), "--maildir",
                                   self.maildir, "--log", self.log, "--control", self.control],
                                  stdout=self.out, stderr=self.out)
        deadline = time.time() + 30
        while not port_open(self.port):
            if time.time() > deadline or self.p.poll() is not None:
                raise RuntimeError("SMTP server did not start")
            time.sleep(0.1)

    def stop(self):
        self.stops.append(time.time())
        self.p.terminate()
        try:
            self.p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()

    def accepted(self, ids):
        """{notification id: [(time, [recipients])]} of the messages it took, for ids."""
        out = {}
        for e in jsonl(self.log, '"message_id"'):
            mid = e.get("message_id") if e.get("event") == "data" and e.get("answer") == "250" \
                else None
            if mid:
                nid = mid.strip("<>").split("@")[0]
                if nid in ids:
                    out.setdefault(nid, []).append((e["time"], e.get("rcpt") or []))
        return out

    def close(self):
        if self.p and self.p.poll() is None:
            self.stop()


class NotifyServer:
    """tests/tools/notify_server.py: checks each JWT, answers as its control file says (per
    recipient), logs every request."""

    def __init__(self, tmp):
        self.log = os.path.join(tmp, "notify.jsonl")
        self.ctl = os.path.join(tmp, "notify-control.json")
        self.key = os.path.join(tmp, "notify-key")
        with open(self.key, "w") as f:
            f.write("chaos-%s-%s\n" % (SID, SECRET))
        os.chmod(self.key, 0o600)
        self.control({})
        port_file = os.path.join(tmp, "notify.port")
        self.out = open(os.path.join(tmp, "notify.out"), "ab")
        self.p = subprocess.Popen(["/usr/bin/python3", os.path.join(TOOLS, "notify_server.py"),
                                   "--service-id", SID, "--secret", SECRET, "--port-file",
                                   port_file, "--log", self.log, "--control", self.ctl],
                                  stdout=self.out, stderr=self.out)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if time.time() > deadline or self.p.poll() is not None:
                raise RuntimeError("Notify server did not start")
            time.sleep(0.1)
        self.url = "http://127.0.0.1:%s" % open(port_file).read().strip()

    def control(self, rules):
        rules = dict(rules, epoch=str(uuid.uuid4()))  # every list starts afresh
        with open(self.ctl + ".tmp", "w") as f:
            json.dump(rules, f)
        os.rename(self.ctl + ".tmp", self.ctl)

    def requests(self, ids):
        """{reference: [request entries, oldest first]} for the references in ids; a slow
        answer's acceptance (logged when it came in) is folded into its request."""
        out, slow_at = {}, {}
        for e in jsonl(self.log):
            if e.get("slow_accepted"):
                slow_at.setdefault(e["reference"], []).append(e["time"])
            elif isinstance(e.get("body"), dict) and e["body"].get("reference") in ids:
                out.setdefault(e["body"]["reference"], []).append(e)
        for ref, reqs in out.items():
            reqs.sort(key=lambda e: e["time"])
            for e in reqs:
                if e.get("mode", "").startswith("slow") and slow_at.get(ref):
                    e["accepted_at"] = slow_at[ref].pop(0)
        return out

    def close(self):
        self.p.terminate()
        self.p.wait()


# ------------------------------------------------------------------ the daemon
class Daemon:
    every = []  # so the driver can kill whatever is left, whatever happened
    clock_offset = 0.0  # notification clock minus real time, the same for every daemon

    def __init__(self, conf, log):
        self.log = log
        self.f = open(log, "ab")
        env = dict(os.environ)
        if env.get("ASAN_OPTIONS"):
            # AddressSanitizer keeps freed memory in a quarantine of up to 256 MB, so a
            # sanitized daemon's RSS grows with its allocations, not its live memory; a
            # small quarantine keeps the memory bound below meaningful under ASan too
            env["ASAN_OPTIONS"] += ":quarantine_size_mb=8"
        # the clock runs on from where the last daemon's was, so leases and not_before
        # written by a killed daemon mean the same to the next
        env["FRONTDOOR_TEST_CLOCK"] = rfc3339(time.time() + Daemon.clock_offset)
        self.p = subprocess.Popen([FD, "--config", conf], stderr=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, env=env)
        # each line of the log prefixed with when it came (the daemon's own lines have no
        # time): the retries' spacing is checked against it
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        Daemon.every.append(self)

    def _pump(self):
        for line in self.p.stderr:
            self.f.write(b"%.3f " % time.time() + line)
            self.f.flush()

    def reaped(self):
        self.pump.join(timeout=10)

    def wait_log(self, pattern, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with open(self.log, "rb") as f:
                m = re.findall(pattern.encode(), f.read())
            if m:
                return m[-1]
            if self.p.poll() is not None:
                return None
            time.sleep(0.2)
        return None

    def http(self):
        m = self.wait_log(r'msg="http listening" address=([0-9.:]+)', 30)
        return m.decode() if m else None

    def get(self, path):
        addr = self.http()
        try:
            with urllib.request.urlopen("http://%s%s" % (addr, path), timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError as e:
            return 0, str(e)

    def rss_kib(self):
        try:
            with open("/proc/%d/status" % self.p.pid) as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def kill9(self):
        self.p.send_signal(signal.SIGKILL)
        self.p.wait()
        self.reaped()

    def term(self, timeout=40):
        t0 = time.time()
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        secs = time.time() - t0
        self.reaped()
        return rc, secs

    def alive(self):
        return self.p.poll() is None


# ------------------------------------------------------------------ the stream
# The state each sample referral leaves its case in (expected.jsonl routes, no history:
# every child and family id is new), and the case events that state allows.
STATE_OF_ROUTE = {"consent_required": "awaiting_consent", "manual_triage": "triage",
                  "signpost": "closed"}


def make_stream(tmp, prefix, n_ref, n_ce, rng):
    samples = [json.loads(l) for l in open(os.path.join(SPEC, "examples", "referrals.jsonl"))
               if l.strip()]
    routes = [json.loads(l)["route"] for l in open(os.path.join(SPEC, "examples", "expected.jsonl"))
              if l.strip()]
    ns = uuid.uuid5(uuid.NAMESPACE_URL, "frontdoord-chaos-" + prefix)
    refs, states, case_routes = [], [], []
    for i in range(n_ref):
        k = i % len(samples)
        ev = json.loads(json.dumps(samples[k]))
        rid = "REF-%s-%07d" % (prefix, i)
        ev["event_id"] = str(uuid.uuid5(ns, "r%d" % i))
        ev["referral"]["id"] = rid
        if isinstance(ev["referral"].get("child"), dict) and "id" in ev["referral"]["child"]:
            ev["referral"]["child"]["id"] = "C-%s-%07d" % (prefix, i)
        if isinstance(ev["referral"].get("family"), dict) and "id" in ev["referral"]["family"]:
            ev["referral"]["family"]["id"] = "F-%s-%07d" % (prefix, i)
        contact = (ev["referral"].get("family") or {}).get("contact")
        if isinstance(contact, dict) and contact.get("mobile"):
            # each family its own number, so the Notify server can answer one family's
            # texts differently from the others'
            contact["mobile"] = "07701 %06d" % i
        refs.append((rid, ev))
        states.append(STATE_OF_ROUTE.get(routes[k], "allocated"))
        case_routes.append(routes[k])
    ces = []
    reroutes = 0
    bookings = []  # (event id, the family's mobile as sent)
    candidates = [i for i in range(n_ref) if states[i] != "closed"]
    rng.shuffle(candidates)
    for j in range(min(n_ce, len(candidates))):
        i = candidates[j]
        rid = refs[i][0]
        base = {"schema_version": 1, "event_id": str(uuid.uuid5(ns, "c%d" % j)),
                "occurred_at": "2026-11-24T09:00:00Z", "case": {"referral_id": rid}}
        st = states[i]
        if st == "awaiting_consent":
            base["type"] = "consent.given"
            reroutes += 1
        elif st == "triage":
            base["type"] = "case.triaged"
            base["triage"] = {"route": "family_hub", "destination": "hub-kendal"}
            reroutes += 1
        elif j % 3 == 0 and case_routes[i] != "social_care":  # nothing above social care
            base["type"] = "case.stepped_up"
            reroutes += 1
        else:
            # 24 h 15 min after the booking: a reminder is due at once (its time passed
            # before the run's clock starts), so it goes within the run too
            base["type"] = "appointment.booked"
            base["appointment"] = {"id": "A-%d" % j, "starts_at": "2026-11-25T09:15:00Z",
                                   "location": "Kendal Family Hub", "with": "Family Help Worker"}
            bookings.append((base["event_id"], "+447701%06d" % i))
        ces.append((rid, base))
    rpath = os.path.join(tmp, prefix + ".referrals")
    cpath = os.path.join(tmp, prefix + ".case-events")
    with open(rpath, "w") as f:
        for rid, ev in refs:
            f.write("%s\t%s\n" % (rid, json.dumps(ev)))
    with open(cpath, "w") as f:
        for rid, ev in ces:
            f.write("%s\t%s\n" % (rid, json.dumps(ev)))
    return rpath, cpath, n_ref, len(ces), reroutes, bookings


# ------------------------------------------------------------------ one run
LOGFMT = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


class Run:
    def __init__(self, ctx, name, n_ref, n_ce):
        self.ctx, self.name = ctx, name
        self.db = "chaos_" + name
        pg, tmp = ctx.pg, ctx.tmp
        pg.sql("frontdoor", "DROP DATABASE IF EXISTS %s" % self.db)
        pg.sql("frontdoor", "CREATE DATABASE %s" % self.db)
        self.conf = os.path.join(tmp, name + ".conf")
        with open(self.conf, "w") as f:
            f.write("[kafka]\nbrokers = %s\ngroup_id = %s-group\n" % (ctx.kafka.bootstrap, name))
            for t in ("referrals", "case-events", "decisions", "dlq"):
                f.write("%s_topic = %s.%s\n" % (t.replace("-", "_"), name, t))
            f.write("rdkafka.session.timeout.ms = 6000\nrdkafka.heartbeat.interval.ms = 500\n")
            f.write("[database]\nconninfo = %s\n" % pg.conninfo(self.db))
            f.write("[http]\nlisten = 127.0.0.1:0\n")
            f.write("[routing]\nrules = %s/config/frontdoor.rules\n" % SRC)
            f.write("directory = %s/config/directory.json\n" % SRC)
            f.write("templates = %s/config/templates\n" % SRC)
            f.write("[email]\nprovider = smtp\nsmtp_url = smtp://127.0.0.1:%d\n" % ctx.smtp.port)
            f.write("from = family-help@example.org\n")
            f.write("timeout_seconds = %d\nmax_in_flight = %d\n" % (TIMEOUT_S, IN_FLIGHT))
            # the stream's thousands of messages are not held back by Notify's 3,000 a minute
            f.write("rate_limit_per_minute = 1000000\n")
            f.write("[sms]\nprovider = notify\nnotify_url = %s\n" % ctx.notify.url)
            f.write("notify_api_key_file = %s\n" % ctx.notify.key)
            f.write("timeout_seconds = %d\nmax_in_flight = %d\n" % (TIMEOUT_S, IN_FLIGHT))
            f.write("rate_limit_per_minute = 1000000\n")
            for t in SMS_TEMPLATES:
                f.write("notify_template.%s = %s\n" % (t, uuid.uuid5(uuid.NAMESPACE_URL, t)))
            f.write("[log]\nlevel = info\n")
        os.chmod(self.conf, 0o600)
        out = subprocess.run([FD, "--config", self.conf, "--migrate"], capture_output=True,
                             text=True)
        if out.returncode != 0:
            raise RuntimeError("migrate: " + out.stderr)
        self.rpath, self.cpath, self.n_ref, self.n_ce, self.reroutes, self.bookings = \
            make_stream(tmp, name, n_ref, n_ce, ctx.rng)
        self.total = self.n_ref + self.n_ce
        self.daemons = []
        self.logs = 0
        self.kills = []  # when a daemon of this run was killed with -9
        self.retry_after = None  # the Notify 429s' Retry-After, when this run has them
        self.after = None  # the scenario's own checks once settled
        self.db_restarted = False
        self.stream_done = time.time()
        ctx.notify.control({})  # Notify accepts everything unless the scenario says otherwise

    def daemon(self):
        self.logs += 1
        d = Daemon(self.conf, os.path.join(self.ctx.tmp, "%s.%d.log" % (self.name, self.logs)))
        self.daemons.append(d)
        return d

    def kill9(self, d):
        self.kills.append(time.time())
        d.kill9()

    def produce(self):
        self.ctx.kafka.produce(self.name + ".referrals", self.rpath)
        self.ctx.kafka.produce(self.name + ".case-events", self.cpath)

    def processed(self):
        return self.ctx.pg.count(self.db, "SELECT count(*) FROM processed_events")

    def wait_done(self, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.processed() >= self.total and self.ctx.pg.count(
                    self.db, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0:
                return True
            time.sleep(1)
        return False

    def unsettled(self):
        return self.ctx.pg.count(self.db, "SELECT count(*) FROM notifications"
                                          " WHERE state IN ('queued', 'sending')")

    def wait_notifications(self, stall=120):
        """Until no notification is queued or being sent. Gives up when the number left has
        not changed for `stall` s while none of them is still waiting for its time: a
        queued row for its not_before (the backoff doubles up to an hour: a row that failed
        five times in a row may wait 8 minutes), a claimed row for its lease to end."""
        last, since = None, time.time()
        while True:
            n = self.unsettled()
            if n == 0:
                return True
            now = rfc3339(time.time() + Daemon.clock_offset)
            waiting = self.ctx.pg.count(self.db, "SELECT count(*) FROM notifications WHERE"
                                        " (state = 'queued' AND not_before > '%s') OR (state ="
                                        " 'sending' AND lease_until > '%s')" % (now, now))
            if n != last or waiting > 0:
                last, since = n, time.time()
            elif time.time() - since > stall:
                return False
            time.sleep(1)

    def finish(self, timeout=600):
        self.finish_stream(timeout)
        self.settle()

    def finish_stream(self, timeout=600):
        done = self.wait_done(timeout)
        check(done, "%s: the stream was worked through (%d of %d events)" %
              (self.name, self.processed(), self.total))
        self.stream_done = time.time()

    def settle(self):
        """Wait for the notifications (the run's daemons still up), stop the daemons, check
        the end state. Runs that harm nothing shared settle later, while the next scenario
        runs: a daemon killed with sends in flight leaves them leased for LEASE_S."""
        t0 = self.stream_done
        settled = self.wait_notifications()
        check(settled, "%s: every notification reached a final state (%.0f s after the stream"
              " was worked through; %d left)" % (self.name, time.time() - t0, self.unsettled()))
        for d in self.daemons:
            if d.alive():
                rc, secs = d.term()
                check(rc == 0, "%s: a daemon stopped by SIGTERM exits 0 (%d, %.1f s)" %
                      (self.name, rc, secs))
        self.end_state()
        self.notification_state()
        if self.after:
            self.after()

    def end_state(self):
        pg, db, name = self.ctx.pg, self.db, self.name
        c = lambda q: pg.count(db, q)
        check(c("SELECT count(*) FROM cases") == self.n_ref,
              "%s: one case per referral (%d of %d)" % (name, c("SELECT count(*) FROM cases"),
                                                        self.n_ref))
        check(c("SELECT count(*) FROM processed_events") == self.total,
              "%s: every event processed exactly once (%d)" % (name, self.total))
        decisions = c("SELECT count(*) FROM decisions")
        makers = c("SELECT count(*) FROM processed_events WHERE outcome IN ('routed', 'rerouted')")
        check(decisions == makers == self.n_ref + self.reroutes,
              "%s: one decision per decision-making event (%d decisions, %d events, %d expected)"
              % (name, decisions, makers, self.n_ref + self.reroutes))
        check(c("SELECT count(*) FROM held_events") == 0, "%s: nothing left held" % name)
        check(c("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0,
              "%s: every outbox row published" % name)
        msgs = self.ctx.kafka.read(name + ".decisions")
        ids = [json.loads(v).get("event_id") for _, v in msgs]
        want = set(pg.sql(db, "SELECT event_id FROM decisions").split())
        check(want <= set(ids), "%s: every decision on %s.decisions (%d of %d)" %
              (name, name, len(want & set(ids)), len(want)))
        say("  %s: %d referrals, %d case events, %d decisions; %d decision messages on Kafka, "
            "%d of them duplicates (a consumer deduplicates by event_id)" %
            (name, self.n_ref, self.n_ce, decisions, len(ids), len(ids) - len(set(ids))))


    # -------------------------------------------------------------- notifications
    def expected_notifications(self):
        """(cause event, template, channel) of every row the stream calls for
        (notifications.md's table): a decision's message to its destination, the
        referrer's acknowledgement of a new referral's decision (but consent_required and
        signpost), a booking's text and reminder."""
        route_rows = {"social_care": [("safeguarding_alert", "email"), ("safeguarding_alert", "sms")],
                      "manual_triage": [("triage_needed", "email")],
                      "consent_required": [("consent_needed", "email")],
                      "signpost": [("signposted", "email")]}
        want = []
        for line in self.ctx.pg.sql(self.db, "SELECT d.cause_event_id, d.route, p.outcome FROM"
                                    " decisions d JOIN processed_events p ON p.event_id ="
                                    " d.cause_event_id").splitlines():
            cause, route, outcome = line.split("|")
            for t, ch in route_rows.get(route, [("case_allocated", "email")]):
                want.append((cause, t, ch))
            if outcome == "routed" and route not in ("consent_required", "signpost"):
                want.append((cause, "referral_acknowledged", "email"))
        for eid, _ in self.bookings:
            want += [(eid, "appointment_booked", "sms"), (eid, "appointment_reminder", "sms")]
        # a red message not sent within 5 minutes of its creation (a long outage's backoff
        # can take it there): the manager's safeguarding_alert_failed, by email and text
        for nid in self.ctx.pg.sql(self.db, "SELECT id FROM notifications WHERE template ="
                                   " 'safeguarding_alert' AND (sent_at IS NULL OR sent_at >"
                                   " created_at + interval '5 minutes')").split():
            want += [("safeguarding_alert_failed:%s:%s" % (nid, ch), "safeguarding_alert_failed",
                      ch) for ch in ("email", "sms")]
        return want

    def daemon_log_events(self):
        """(time, msg, fields) of every line the run's daemons logged, oldest first."""
        out = []
        for d in self.daemons:
            with open(d.log, "rb") as f:
                for raw in f:
                    line = raw.decode("utf-8", "replace")
                    t, _, rest = line.partition(" ")
                    try:
                        t = float(t)
                    except ValueError:
                        continue
                    fields = {k: v[1:-1].replace('\\"', '"') if v.startswith('"') else v
                              for k, v in LOGFMT.findall(rest)}
                    out.append((t, fields.get("msg", ""), fields))
        out.sort(key=lambda e: e[0])
        return out

    def notification_state(self):
        ctx, pg, db, name = self.ctx, self.ctx.pg, self.db, self.name
        rows = []
        for line in pg.sql(db, "SELECT id, coalesce(cause_event_id::text, dedupe_key, ''),"
                               " template, channel, coalesce(recipient, ''), state, attempts,"
                               " coalesce(provider_ref, ''), coalesce(last_error, '')"
                               " FROM notifications").splitlines():
            f = line.split("|", 8)
            rows.append(dict(id=f[0], cause=f[1], template=f[2], channel=f[3], recipient=f[4],
                             state=f[5], attempts=int(f[6]), ref=f[7], error=f[8]))
        by_id = {r["id"]: r for r in rows}
        # one row per cause, template, channel and recipient; exactly the ones called for
        keys = {}
        for r in rows:
            k = (r["cause"], r["template"], r["channel"], r["recipient"])
            keys[k] = keys.get(k, 0) + 1
        twice = sum(n - 1 for n in keys.values() if n > 1)
        check(twice == 0, "%s: no duplicate notification rows (%d rows, %d of them twice)" %
              (name, len(rows), twice))
        want = sorted(self.expected_notifications())
        have = sorted((r["cause"], r["template"], r["channel"]) for r in rows)
        late = sum(1 for w in want if w[1] == "safeguarding_alert_failed")
        check(want == have, "%s: the notification rows are the ones the decisions, bookings and"
              " late red messages call for (%d rows, %d expected, %d of them the manager's"
              " alerts of a red message late; e.g. extra %s, missing %s)" %
              (name, len(have), len(want), late, sorted(set(have) - set(want))[:2],
               sorted(set(want) - set(have))[:2]))
        states = {}
        for r in rows:
            states[r["state"]] = states.get(r["state"], 0) + 1
        check(all(st in FINAL for st in states) and not states.get("failed"),
              "%s: every notification in a final state, none failed (%s)" % (name, states))
        # what the servers took
        ids = set(by_id)
        smtp = ctx.smtp.accepted(ids)
        reqs = ctx.notify.requests(ids)
        acc = {}  # id -> [(when the provider took it, answer delivered to the daemon)]
        for nid, got in smtp.items():
            acc[nid] = [(t, True) for t, _ in got]
        for ref, rs in reqs.items():
            acc[ref] = [(e.get("accepted_at", e["time"]), e.get("delivered", True))
                        for e in rs if e.get("accepted")]
        sent = [r for r in rows if r["state"] in ("sent", "delivered")]
        lost = [r["id"] for r in sent if not acc.get(r["id"])]
        check(not lost, "%s: every sent notification reached its server (%d emails at SMTP, %d"
              " texts at Notify; %d not there, e.g. %s)" %
              (name, sum(1 for r in sent if r["channel"] == "email" and smtp.get(r["id"])),
               sum(1 for r in sent if r["channel"] == "sms" and acc.get(r["id"])), len(lost),
               lost[:2]))
        unsent = [nid for nid in acc if acc[nid] and by_id[nid]["state"] not in ("sent", "delivered")]
        check(not unsent, "%s: nothing the servers took is left unsent in the table (%s)" %
              (name, unsent[:3]))
        wrong = [nid for nid, got in smtp.items() if any(rc != [by_id[nid]["recipient"]]
                                                        for _, rc in got)]
        wrong += [ref for ref, rs in reqs.items() for e in rs
                  if e["body"].get("phone_number") != by_id[ref]["recipient"]]
        check(not wrong, "%s: each message went to its row's recipient (%s)" % (name, wrong[:3]))
        refs = [r for r in sent if r["channel"] == "email" and r["ref"] != "<%s@example.org>" % r["id"]]
        refs += [r for r in sent if r["channel"] == "sms" and r["ref"] not in
                 {e.get("id") for e in reqs.get(r["id"], []) if e.get("accepted")}]
        check(not refs, "%s: each sent row holds its provider's id (Message-ID, Notify's id)"
              " (%d do not)" % (name, len(refs)))
        bad_jwt = [e for rs in reqs.values() for e in rs if not e.get("jwt_ok")]
        check(not bad_jwt, "%s: every Notify request carried a valid JWT (%d requests)" %
              (name, sum(len(rs) for rs in reqs.values())))
        # messages a provider took more than once, each explained by the documented window
        dup = {"email": [0, 0], "sms": [0, 0]}  # [a kill after the acceptance, a lost answer]
        per_kill = {}  # (kill, channel) -> duplicates
        unexplained = []
        for nid, got in acc.items():
            if len(got) < 2:
                continue
            got.sort()
            r, (a1, answered), a2 = by_id[nid], got[0], got[1][0]
            ch = r["channel"]
            extra = len(got) - 1
            if extra == 1 and r["attempts"] >= 2 and a2 >= a1 + LEASE_S - TIMEOUT_S - 2 and \
                    any(a1 - 1 <= k <= a1 + 30 for k in self.kills):
                dup[ch][0] += 1  # the daemon died before recording it; sent again after the lease
                k = min(k for k in self.kills if k >= a1 - 1)
                per_kill[(k, ch)] = per_kill.get((k, ch), 0) + 1
            elif extra == 1 and ch == "sms" and not answered and \
                    any(e.get("mode", "").startswith("slow") and not e["delivered"]
                        for e in reqs[nid]):
                dup[ch][1] += 1  # the answer came after the timeout
            elif extra == 1 and ch == "email" and \
                    any(a1 - 1 <= s <= a1 + TIMEOUT_S + 1 for s in ctx.smtp.stops):
                dup[ch][1] += 1  # the server stopped before it answered
            else:
                unexplained.append((nid, ch, got))
        say("  %s: notifications %s; duplicates at the providers: SMTP %d, Notify %d (after a"
            " kill -9: %d, %d; answers lost to a timeout or a stopped server: %d, %d)" %
            (name, " ".join("%s %d" % kv for kv in sorted(states.items())),
             sum(dup["email"]), sum(dup["sms"]), dup["email"][0], dup["sms"][0], dup["email"][1],
             dup["sms"][1]))
        check(not unexplained, "%s: every duplicate at a provider is from the documented window"
              " (%d are not: %s)" % (name, len(unexplained), unexplained[:2]))
        if self.kills:
            most = max(per_kill.values() or [0])
            check(most <= IN_FLIGHT, "%s: at most one duplicate per send in flight per kill (%d"
                  " kills, %d sends in flight a channel; most after one kill on one channel: %d)"
                  % (name, len(self.kills), IN_FLIGHT, most))
        self.check_retries(rows, reqs)

    def check_retries(self, rows, reqs):
        """Each retry planned as the backoff says (notifications.md: exponential with full
        jitter from 30 s, or Notify's Retry-After) and not tried before its not_before."""
        name = self.name
        events = self.daemon_log_events()
        per = {}
        for t, msg, f in events:
            if msg in ("notification will be retried", "notification sent") and "notification" in f:
                per.setdefault(f["notification"], []).append((t, msg, f))
        n_retry, early, off, waits = 0, [], [], {}
        for nid, evs in per.items():
            for i, (t, msg, f) in enumerate(evs):
                if msg != "notification will be retried":
                    continue
                n_retry += 1
                att = int(f.get("attempts", "0"))
                nb = parse_rfc3339(f["not_before"]) - Daemon.clock_offset
                wait = nb - t
                if f.get("error", "").startswith("notify 429 RateLimitError"):
                    ok = self.retry_after is not None and abs(wait - self.retry_after) <= 2
                else:
                    ok = 0.5 <= wait <= min(30 * 2 ** (att - 1), 3600) + 2
                    waits.setdefault(att, []).append(wait)
                if not ok:
                    off.append((nid, att, f.get("error"), round(wait, 1)))
                later = [e for e in evs[i + 1:] if int(e[2].get("attempts", "0")) > att]
                if later and later[0][0] < nb - 0.5:
                    early.append((nid, att, round(later[0][0] - nb, 1)))
        # claims no outcome was recorded for (a kill -9 took the send, or a database
        # restart the claim's answer): the row was claimed again after its lease
        retried = {nid: sum(1 for e in evs if e[1] == "notification will be retried")
                   for nid, evs in per.items()}
        reclaimed = sum(r["attempts"] - 1 - retried.get(r["id"], 0) for r in rows
                        if r["attempts"] > 1 + retried.get(r["id"], 0))
        say("  %s: %d retries (longest planned wait by attempt: %s); %d claims left without"
            " an outcome (a kill -9, a claim's answer lost to a database restart), claimed"
            " again after the lease" %
            (name, n_retry, ", ".join("%d: %.0f s of %d" % (a, max(w), len(w))
                                      for a, w in sorted(waits.items())) or "none", reclaimed))
        if not self.kills and not self.db_restarted:
            # (a claim whose answer a database restart lost is claimed again too, unsent)
            check(reclaimed == 0, "%s: no send lost its outcome without a kill (%d)" %
                  (name, reclaimed))
        if n_retry:
            check(not off, "%s: every retry planned within its backoff (1 s to 30 s x"
                  " 2^(attempt-1), or Retry-After) (%d of %d not: %s)" %
                  (name, len(off), n_retry, off[:3]))
            check(not early, "%s: no notification tried again before its not_before (%d of %d"
                  " early: %s)" % (name, len(early), n_retry, early[:3]))
        if len(waits.get(2, [])) >= 20:
            check(max(waits[2]) > 30, "%s: second retries wait up to 60 s (the backoff doubles):"
                  " longest %.0f s of %d" % (name, max(waits[2]), len(waits[2])))
        # Notify's side of it: a 429 with Retry-After is not tried again before it; a 403
        # is logged as an error by the daemon every time
        after, n429, n403 = [], 0, 0
        for ref, rs in reqs.items():
            for i, e in enumerate(rs):
                if e.get("answer") == 429 and e.get("mode", "").startswith("429rate"):
                    n429 += 1
                    ra = float(e["mode"].split(":")[1])
                    nxt = rs[i + 1]["time"] if i + 1 < len(rs) else None
                    if nxt is None or nxt < e["time"] + ra:
                        after.append((ref, ra, nxt and round(nxt - e["time"], 1)))
                n403 += e.get("answer") == 403
        if n429:
            check(not after, "%s: Notify's 429s were tried again no earlier than Retry-After"
                  " (%d answered 429; %s)" % (name, n429, after[:3]))
        alerts = sum(1 for _, msg, f in events if f.get("level") == "error" and
                     msg.startswith("notification provider refused the credentials"))
        if n403 or alerts:
            check(alerts == n403, "%s: an error logged for every 403 from Notify (%d answers,"
                  " %d errors)" % (name, n403, alerts))


# ------------------------------------------------------------------ scenarios
def wait_ready(d, status, timeout, word=None):
    """Until /readyz answers `status` (and names `word`), or the time is up."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, body = d.get("/readyz")
        if st == status and (word is None or word in body.lower()):
            return True
        time.sleep(0.5)
    return False


def scenario_crash(ctx):
    say("== crash: kill -9 at random moments during the stream")
    run = Run(ctx, "crash", ctx.n_ref, ctx.n_ce)
    d = run.daemon()
    run.produce()
    kills = 2 if ctx.fast else 5
    for k in range(kills):
        # a random moment while the stream is still being worked through
        target = ctx.rng.randint(run.total * k // (kills + 1), run.total * (k + 1) // (kills + 1))
        deadline = time.time() + 300
        while run.processed() < target and time.time() < deadline and d.alive():
            time.sleep(0.05 + ctx.rng.random() * 0.2)
        at = run.processed()
        run.kill9(d)
        say("  kill -9 number %d at %d of %d events processed" % (k + 1, at, run.total))
        d = run.daemon()
    run.finish_stream()
    return [run]


def scenario_scaleout(ctx):
    say("== scale-out: two daemons, a third added, one killed")
    run = Run(ctx, "scale", ctx.n_ref, ctx.n_ce)
    a, b = run.daemon(), run.daemon()
    run.produce()
    target = run.total // 4
    while run.processed() < target:
        time.sleep(0.1)
    c = run.daemon()
    say("  third daemon added at %d events" % run.processed())
    target = run.total // 2
    while run.processed() < target:
        time.sleep(0.1)
    run.kill9(a)
    say("  first daemon killed (-9) at %d events" % run.processed())
    run.finish_stream()

    def worked():
        n = []
        for d in (b, c):
            with open(d.log, "rb") as f:
                n.append(len(re.findall(rb'msg="(referral routed|case re-routed|case event applied)"',
                                        f.read())))
        check(all(w > 0 for w in n), "scale: the surviving daemons both did work (%s)" % n)
    run.after = worked
    return [run]


def scenario_outages(ctx):
    say("== outages: the SMTP server down, Notify refusing, PostgreSQL restarted, a broker"
        " down, request errors")
    run = Run(ctx, "outage", ctx.n_ref, ctx.n_ce)
    d = run.daemon()
    if not d.http():
        check(False, "outage: the daemon's HTTP listener")
        return
    check(wait_ready(d, 200, 60), "outage: ready before the outages")
    # Notify: the first texts of some families answered 500 (once or twice), 429 with
    # Retry-After, slower than the timeout, or 403; the rest accepted
    modes = [["500"], ["429rate:%d" % RETRY_AFTER_S], ["slow:%d" % SLOW_S], ["403"],
             ["500", "500"]]
    per = 10 if ctx.fast else 40
    ctx.notify.control({mobile: modes[k % len(modes)]
                        for k, (_, mobile) in enumerate(run.bookings[:per * len(modes)])})
    run.retry_after = RETRY_AFTER_S
    # the SMTP server down from the start of the stream
    smtp_down = 20 if ctx.fast else 60
    ctx.smtp.stop()
    t_smtp = time.time()
    say("  SMTP server stopped for %d s (%s)" % (smtp_down, "the fast run's; scripts/chaos"
        " stops it for 60 s" if ctx.fast else "a minute"))
    run.produce()
    rss = [d.rss_kib()]
    deadline = time.time() + 30
    while time.time() < deadline and pg_count(run, "SELECT count(*) FROM notifications WHERE"
                                               " last_error = 'smtp: connection error'") < 1:
        time.sleep(0.5)
    st, body = d.get("/readyz")
    check(st == 200, "outage: /readyz 200 while only the SMTP server is down and Notify refuses"
          " (a provider is not a readiness dependency; %d %s; %d emails waiting for SMTP)" %
          (st, body.strip()[:60], pg_count(run, "SELECT count(*) FROM notifications WHERE"
                                                " last_error = 'smtp: connection error'")))
    rss.append(d.rss_kib())
    while run.processed() < run.total // 5:
        time.sleep(0.1)
    # PostgreSQL restart
    run.db_restarted = True
    ctx.pg.stop()
    time.sleep(1.5)
    st, body = d.get("/readyz")
    check(st == 503 and "database" in body, "outage: /readyz 503 naming the database while it "
          "is down (%d %s)" % (st, body.strip()[:60]))
    time.sleep(2)
    ctx.pg.start()
    check(wait_ready(d, 200, 30), "outage: ready again after PostgreSQL is back")
    rss.append(d.rss_kib())
    # a broker down (every partition of this run led elsewhere meanwhile is not needed:
    # librdkafka moves on; what matters is nothing lost and readiness told the truth)
    down_s = 5 if ctx.fast else 20
    check(ctx.kafka.control("broker_down 1") == "ok", "outage: broker 1 taken down")
    time.sleep(down_s)
    st, body = d.get("/readyz")
    check(st == 200, "outage: still ready with one broker of three down (%d %s)" %
          (st, body.strip()[:60]))
    rss.append(d.rss_kib())
    check(ctx.kafka.control("broker_up 1") == "ok", "outage: broker 1 back after %d s" % down_s)
    # the whole cluster gone for a moment: not ready, naming Kafka
    for b in (1, 2, 3):
        ctx.kafka.control("broker_down %d" % b)
    check(wait_ready(d, 503, 30, "kafka"), "outage: /readyz 503 naming Kafka with every broker down")
    for b in (1, 2, 3):
        ctx.kafka.control("broker_up %d" % b)
    check(wait_ready(d, 200, 60), "outage: ready again once the brokers are back")
    # the rest of the SMTP outage
    while time.time() < t_smtp + smtp_down:
        rss.append(d.rss_kib())
        time.sleep(min(2, max(0.1, t_smtp + smtp_down - time.time())))
    waiting = pg_count(run, "SELECT count(*) FROM notifications WHERE channel = 'email' AND"
                            " state IN ('queued', 'sending')")
    st, body = d.get("/readyz")
    check(st == 200, "outage: /readyz 200 at the end of the SMTP outage (%d %s)" %
          (st, body.strip()[:60]))
    ctx.smtp.start()
    say("  SMTP server back after %.0f s, %d emails waiting" % (time.time() - t_smtp, waiting))
    # request errors: Produce (0), Fetch (1), OffsetCommit (8), each 5 times, 7 = timed out
    for api in (0, 1, 8):
        ctx.kafka.control("push_errors %d 5 7" % api)
    rss.append(d.rss_kib())
    run.finish()
    check(max(rss) < 150 * 1024, "outage: memory bounded through the outages (RSS %s MiB)" %
          [r // 1024 for r in rss])
    with open(d.log, "rb") as f:
        log = f.read()
    check(b'msg="database not ready; consumption paused"' in log,
          "outage: the database outage was reported and consumption paused")
    tried = pg_count(run, "SELECT count(*) FROM notifications WHERE channel = 'email' AND"
                          " attempts > 1")
    check(tried > 0, "outage: emails retried after the SMTP outage were delivered (%d)" % tried)


def pg_count(run, q):
    return run.ctx.pg.count(run.db, q)


def scenario_shutdown(ctx):
    say("== shutdown: SIGTERM under full load")
    run = Run(ctx, "shutdown", ctx.n_ref, ctx.n_ce)
    d = run.daemon()
    run.produce()
    while run.processed() < run.total // 3:
        time.sleep(0.1)
    at = run.processed()
    rc, secs = d.term()
    check(rc == 0 and secs <= 30, "shutdown: SIGTERM at %d events: exit %d in %.1f s (at most 30)"
          % (at, rc, secs))
    run.daemon()
    run.finish_stream()
    return [run]


SCENARIOS = {"crash": scenario_crash, "scaleout": scenario_scaleout,
             "shutdown": scenario_shutdown, "outages": scenario_outages}
# Scenarios whose harm reaches every run (the one PostgreSQL, Kafka cluster, SMTP and Notify
# server): the runs before them settle first.
SHARED_HARM = {"outages"}


class Ctx:
    pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fast", action="store_true")
    ap.add_argument("--referrals", type=int)
    ap.add_argument("--case-events", type=int)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("scenarios", nargs="*")
    a = ap.parse_args()
    ctx = Ctx()
    ctx.fast = a.fast
    ctx.n_ref = a.referrals or (3000 if a.fast else 100000)
    ctx.n_ce = a.case_events or (600 if a.fast else 20000)
    ctx.rng = random.Random(a.seed)
    names = a.scenarios or list(SCENARIOS)
    say("chaos: seed %d, %d referrals and %d case events a run, scenarios %s" %
        (a.seed, ctx.n_ref, ctx.n_ce, " ".join(names)))
    ctx.tmp = tempfile.mkdtemp(prefix="fd-chaos-")
    os.chmod(ctx.tmp, 0o755)
    topics = []
    for n in ("crash", "scale", "outage", "shutdown"):
        # the mock cluster keeps about 5 MB of each partition
        topics += ["%s.referrals:32" % n, "%s.case-events:8" % n, "%s.decisions:16" % n,
                   "%s.dlq:2" % n]
    ctx.pg = ctx.kafka = ctx.smtp = ctx.notify = None
    Daemon.clock_offset = CLOCK_START - time.time()
    try:
        ctx.pg = Postgres(ctx.tmp)
        ctx.kafka = Kafka(ctx.tmp, topics)
        ctx.smtp = Smtp(ctx.tmp)
        ctx.notify = NotifyServer(ctx.tmp)
        pending = []

        def settle():
            while pending:
                run = pending.pop(0)
                t0 = time.time()
                say("== %s: settling" % run.name)
                try:
                    run.settle()
                except Exception as e:  # a crash of the driver is a failure, never a skip
                    check(False, "%s raised %r" % (run.name, e))
                say("  (%s settled in %.0f s more)" % (run.name, time.time() - t0))
        for n in names:
            if n in SHARED_HARM:
                settle()
            t0 = time.time()
            try:
                pending += SCENARIOS[n](ctx) or []
            except Exception as e:  # a crash of the driver is a failure, never a skip
                check(False, "%s raised %r" % (n, e))
            say("  (%s took %.0f s)" % (n, time.time() - t0))
        settle()
    finally:
        for d in Daemon.every:
            if d.alive():
                d.p.kill()
                d.p.wait()
        if ctx.kafka:
            ctx.kafka.close()
        if ctx.smtp:
            ctx.smtp.close()
        if ctx.notify:
            ctx.notify.close()
        if ctx.pg:
            ctx.pg.close()
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    say("chaos: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
