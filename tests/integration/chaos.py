#!/usr/bin/python3
"""Reliability runs: nothing is lost and nothing is done twice, whatever happens.

    chaos.py [--fast] [--referrals N] [--case-events C] [--seed S] [SCENARIO...]

Scenarios (all by default): crash, scaleout, outages, shutdown. Each starts from an empty
database and topics of its own, produces a stream of N referrals (the spec's samples in
turn, unique ids) and C case events on their cases (consents, triage decisions,
appointments, step-ups and closures, valid for the state each case will be in), does
its harm while the daemons work through the stream, waits for the end and checks the
end state:
  - one case per referral, every event processed exactly once (processed_events);
  - one decision per decision-making event (a referral or a re-routing case event);
  - every decision published to frontdoor.decisions (duplicates there counted: consumers
    deduplicate by event_id); every outbox row published; nothing left held.
The harm:
  crash     kill -9 the daemon at 5 random moments (2 with --fast), restarting it at once;
  scaleout  two daemons in one group, a third added mid-stream, one killed (-9);
  outages   PostgreSQL restarted mid-stream; a Kafka broker down for 20 s (5 with --fast);
            Kafka request errors injected; /readyz answering 503 while it lasts and the
            daemon's memory staying bounded;
  shutdown  SIGTERM under full load: exit 0 within 30 s, the rest done by the next run.
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
import time
import urllib.request
import uuid

SRC = os.environ.get("FRONTDOOR_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BUILD = os.environ.get("FRONTDOOR_BUILD_DIR", os.path.join(SRC, "build"))
SPEC = os.environ.get("FRONTDOOR_SPEC_DIR", os.path.join(SRC, "..", "shared", "spec"))
FD = os.path.join(BUILD, "frontdoord")
MOCK = os.path.join(BUILD, "frontdoor-mock-kafka")

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


# ------------------------------------------------------------------ the daemon
class Daemon:
    every = []  # so the driver can kill whatever is left, whatever happened

    def __init__(self, conf, log):
        self.log = log
        self.f = open(log, "ab")
        env = dict(os.environ)
        if env.get("ASAN_OPTIONS"):
            # AddressSanitizer keeps freed memory in a quarantine of up to 256 MB, so a
            # sanitized daemon's RSS grows with its allocations, not its live memory; a
            # small quarantine keeps the memory bound below meaningful under ASan too
            env["ASAN_OPTIONS"] += ":quarantine_size_mb=8"
        self.p = subprocess.Popen([FD, "--config", conf], stderr=self.f, stdout=subprocess.DEVNULL,
                                  env=env)
        Daemon.every.append(self)

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

    def term(self, timeout=40):
        t0 = time.time()
        self.p.send_signal(signal.SIGTERM)
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        return rc, time.time() - t0

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
        refs.append((rid, ev))
        states.append(STATE_OF_ROUTE.get(routes[k], "allocated"))
        case_routes.append(routes[k])
    ces = []
    reroutes = 0
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
            base["type"] = "appointment.booked"
            base["appointment"] = {"id": "A-%d" % j, "starts_at": "2026-12-10T10:30:00Z",
                                   "location": "Kendal Family Hub", "with": "Family Help Worker"}
        ces.append((rid, base))
    rpath = os.path.join(tmp, prefix + ".referrals")
    cpath = os.path.join(tmp, prefix + ".case-events")
    with open(rpath, "w") as f:
        for rid, ev in refs:
            f.write("%s\t%s\n" % (rid, json.dumps(ev)))
    with open(cpath, "w") as f:
        for rid, ev in ces:
            f.write("%s\t%s\n" % (rid, json.dumps(ev)))
    return rpath, cpath, n_ref, len(ces), reroutes


# ------------------------------------------------------------------ one run
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
            f.write("[log]\nlevel = info\n")
        os.chmod(self.conf, 0o600)
        out = subprocess.run([FD, "--config", self.conf, "--migrate"], capture_output=True,
                             text=True)
        if out.returncode != 0:
            raise RuntimeError("migrate: " + out.stderr)
        self.rpath, self.cpath, self.n_ref, self.n_ce, self.reroutes = make_stream(
            tmp, name, n_ref, n_ce, ctx.rng)
        self.total = self.n_ref + self.n_ce
        self.daemons = []
        self.logs = 0

    def daemon(self):
        self.logs += 1
        d = Daemon(self.conf, os.path.join(self.ctx.tmp, "%s.%d.log" % (self.name, self.logs)))
        self.daemons.append(d)
        return d

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

    def finish(self, timeout=600):
        done = self.wait_done(timeout)
        check(done, "%s: the stream was worked through (%d of %d events)" %
              (self.name, self.processed(), self.total))
        for d in self.daemons:
            if d.alive():
                rc, secs = d.term()
                check(rc == 0, "%s: a daemon stopped by SIGTERM exits 0 (%d, %.1f s)" %
                      (self.name, rc, secs))
        self.end_state()

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
        d.kill9()
        say("  kill -9 number %d at %d of %d events processed" % (k + 1, at, run.total))
        d = run.daemon()
    run.finish()


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
    a.kill9()
    say("  first daemon killed (-9) at %d events" % run.processed())
    run.finish()
    worked = []
    for d in (b, c):
        with open(d.log, "rb") as f:
            worked.append(len(re.findall(rb'msg="(referral routed|case re-routed|case event applied)"',
                                         f.read())))
    check(all(w > 0 for w in worked), "scale: the surviving daemons both did work (%s)" % worked)


def scenario_outages(ctx):
    say("== outages: PostgreSQL restarted, a broker down, request errors")
    run = Run(ctx, "outage", ctx.n_ref, ctx.n_ce)
    d = run.daemon()
    if not d.http():
        check(False, "outage: the daemon's HTTP listener")
        return
    check(wait_ready(d, 200, 60), "outage: ready before the outages")
    run.produce()
    while run.processed() < run.total // 5:
        time.sleep(0.1)
    rss = [d.rss_kib()]
    # PostgreSQL restart
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
    run.finish()


SCENARIOS = {"crash": scenario_crash, "scaleout": scenario_scaleout,
             "outages": scenario_outages, "shutdown": scenario_shutdown}


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
    ctx.pg = ctx.kafka = None
    try:
        ctx.pg = Postgres(ctx.tmp)
        ctx.kafka = Kafka(ctx.tmp, topics)
        for n in names:
            t0 = time.time()
            try:
                SCENARIOS[n](ctx)
            except Exception as e:  # a crash of the driver is a failure, never a skip
                check(False, "%s raised %r" % (n, e))
            say("  (%s took %.0f s)" % (n, time.time() - t0))
    finally:
        for d in Daemon.every:
            if d.alive():
                d.p.kill()
                d.p.wait()
        if ctx.kafka:
            ctx.kafka.close()
        if ctx.pg:
            ctx.pg.close()
        if not os.environ.get("KEEP_TMP"):
            shutil.rmtree(ctx.tmp, ignore_errors=True)
    say("chaos: %d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
