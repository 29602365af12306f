#!/usr/bin/env python3
"""Integration tests of the case store against the real PostgreSQL fixture.

Driven through frontdoor-casestore-feed (the case store on a libevent loop, no Kafka).
Each run uses its own database on the fixture server. Covers every transition of the
table in routing-policy.md, both rejection reasons (invalid_transition, unknown_case),
event_id_reused and duplicate_referral, the history rules 5 and 6 with real rows, the
unknown-case hold and retry, replay, a killed and restarted feeder, PostgreSQL restarted
mid-stream and two feeders on one database at once.
"""
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
SPEC = os.environ.get("FRONTDOOR_SPEC_DIR", os.path.join(SRC, "..", "shared", "spec"))
FEED = os.path.join(BUILD, "frontdoor-casestore-feed")
FD = os.path.join(BUILD, "frontdoord")

passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL: " + what, file=sys.stderr)


def eq(want, got, what):
    check(want == got, "%s: got %r, want %r" % (what, got, want))


def load_env(name):
    env = {}
    with open(os.path.join(SERVICES, name + ".env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            env[k] = v.strip('"')
    return env


PG = load_env("postgres")
BASE_CONNINFO = PG["FD_PG_CONNINFO"]
TMP = tempfile.mkdtemp(prefix="fd-casestore-")
NS = uuid.UUID("6f1c1d4e-0000-4000-8000-000000000000")


def eid(name):
    return str(uuid.uuid5(NS, name))


def psql(db, sql, *args):
    out = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", conninfo(db), "-c", sql],
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout.strip()


def conninfo(db):
    """A database on the fixture server by name, or a whole connection string."""
    if db.startswith("host="):
        return db
    return BASE_CONNINFO.replace("dbname=frontdoor", "dbname=" + db)


def new_db(tag):
    name = "fd_cs_%s_%d" % (tag, os.getpid())
    subprocess.run(["psql", "-XAtq", BASE_CONNINFO, "-c", "DROP DATABASE IF EXISTS " + name],
                   check=True, capture_output=True)
    subprocess.run(["psql", "-XAtq", BASE_CONNINFO, "-c", "CREATE DATABASE " + name],
                   check=True, capture_output=True)
    return name


def config_for(db):
    d = os.path.join(TMP, "conf-" + db)
    shutil.copytree(os.path.join(SRC, "config"), d)
    path = os.path.join(d, "frontdoord.conf")
    with open(path) as f:
        text = f.read()
    text = text.replace("conninfo =\n", "conninfo = %s\n" % conninfo(db))
    text = text.replace("level = info", "level = warn")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def migrate(conf):
    return subprocess.run([FD, "--config", conf, "--migrate"], capture_output=True, text=True)


def write_events(name, events):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    return path


def feed(conf, files, *opts, timeout=120):
    out = subprocess.run([FEED, "--config", conf, "--scan-ms", "100"] + list(opts) + files,
                         capture_output=True, text=True, timeout=timeout)
    res = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[1] != "-":
            res.setdefault(parts[1], []).append((parts[2], parts[3]))
    return out.returncode, res, out


def referral(rid, child, family, occurred="2026-11-23T10:15:00Z", level=2, needs=None,
             consent=True, postcode="LA9 4DQ", urn=None, dob="2017-05-02", risk=False,
             name=None):
    c = {"id": child, "first_name": "Sam", "last_name": "Sample", "date_of_birth": dob,
         "send": False, "postcode": postcode}
    if urn:
        c["school_urn"] = urn
    r = {"id": rid, "source": "school",
         "referrer": {"name": "Ms R", "organisation": "x", "email": "referrer@example.org"},
         "child": c,
         "family": {"id": family, "contact": {"name": "A", "mobile": "07700 900123",
                                               "email": "a@example.org", "language": "en"},
                    "consent": {"early_help": consent, "sms": True, "email": True}},
         "needs": needs if needs is not None else ["parenting"],
         "safeguarding": {"immediate_risk": risk}, "summary": "free text"}
    if level is not None:
        r["level_of_need"] = level
    return {"schema_version": 1, "event_id": eid(name or ("ref:" + rid)),
            "type": "referral.received", "occurred_at": occurred, "referral": r}


def case_event(name, typ, rid, occurred="2026-11-24T09:00:00Z", **extra):
    e = {"schema_version": 1, "event_id": eid(name), "type": typ, "occurred_at": occurred,
         "case": {"referral_id": rid}}
    e.update(extra)
    return e


def case_row(db, rid):
    row = psql(db, "SELECT state, route, destination, priority, rule, coalesce(to_char("
               "decision_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '-'),"
               " closed_at IS NOT NULL FROM cases WHERE referral_id = '%s'" % rid)
    return tuple(row.split("|")) if row else None


def count(db, sql):
    return int(psql(db, sql))


# ------------------------------------------------------------------ schema
def test_schema():
    db = new_db("schema")
    conf = config_for(db)
    # the daemon's store refuses an unmigrated database, naming --migrate
    ev = write_events("schema.jsonl", [referral("REF-S-1", "C-S1", "F-S1")])
    rc, _, out = feed(conf, [ev], "--timeout", "20")
    eq(69, rc, "feed on an unmigrated database exits 69")
    check("frontdoord --migrate" in out.stderr, "the refusal names frontdoord --migrate")
    m = migrate(conf)
    eq(0, m.returncode, "--migrate exit status")
    check("migrated from version 0 to" in m.stdout, "--migrate says what it did")
    m = migrate(conf)
    eq(0, m.returncode, "--migrate again")
    check("up to date" in m.stdout, "--migrate again is a no-op")
    # a schema older than the release: pretend the last migration is missing
    psql(db, "DELETE FROM schema_version WHERE version = (SELECT max(version) FROM schema_version)")
    rc, _, out = feed(conf, [ev], "--timeout", "20")
    eq(69, rc, "feed on an older schema exits 69")
    # duplicates are impossible whatever the code does
    psql(db, "INSERT INTO schema_version (version, release) SELECT coalesce(max(version), 0) + 1,"
         " 'test' FROM schema_version")
    for table, cons in (("cases", "referral_id"), ("processed_events", "event_id"),
                        ("decisions", "cause_event_id")):
        row = psql(db, "SELECT count(*) FROM pg_indexes WHERE tablename = '%s' AND indexdef "
                   "LIKE '%%UNIQUE%%(%s)%%'" % (table, cons))
        check(int(row) >= 1, "unique index on %s(%s)" % (table, cons))


# ------------------------------------------------------------------ samples and replay
def test_samples_and_replay():
    db = new_db("samples")
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    sample = os.path.join(SPEC, "examples", "referrals.jsonl")
    rc, res, out = feed(conf, [sample])
    eq(0, rc, "feed exit status")
    eq(25, sum(1 for v in res.values() if v[0][0] == "routed"), "sample referrals routed")
    want = {}
    with open(os.path.join(SPEC, "examples", "expected.jsonl")) as f:
        for line in f:
            d = json.loads(line)
            want[d["referral_id"]] = (d["route"], d["destination"], d["priority"], d["rule"],
                                      d["decision_due_at"] or "-")
    for rid, w in want.items():
        row = case_row(db, rid)
        eq(w, row[1:6] if row else None, "case %s as expected.jsonl" % rid)
    for table in ("cases", "decisions", "processed_events", "audit_log", "outbox"):
        eq(25, count(db, "SELECT count(*) FROM " + table), "rows in " + table)
    msg = json.loads(psql(db, "SELECT convert_from(payload, 'UTF8') FROM outbox o JOIN "
                          "decisions d ON o.dedupe_key = 'decision:' || d.cause_event_id "
                          "WHERE d.referral_id = 'REF-EX-001'"))
    eq(["schema_version", "type", "event_id", "cause_event_id", "referral_id", "route",
        "destination", "priority", "rule", "reasons", "decided_at", "decision_due_at", "state"],
       list(msg.keys()), "decision message fields in order")
    eq(("case.routed", "school", "allocated"), (msg["type"], msg["route"], msg["state"]),
       "decision message content")
    # replay: nothing changes
    before = psql(db, "SELECT md5(string_agg(c::text, ',' ORDER BY referral_id)) FROM cases c")
    rc, res, _ = feed(conf, [sample])
    eq(0, rc, "replay exit status")
    eq(25, sum(1 for v in res.values() if v[0][0] == "duplicate"), "replayed events are duplicates")
    for table in ("cases", "decisions", "processed_events", "audit_log", "outbox"):
        eq(25, count(db, "SELECT count(*) FROM " + table), "rows in %s after replay" % table)
    eq(before, psql(db, "SELECT md5(string_agg(c::text, ',' ORDER BY referral_id)) FROM cases c"),
       "cases unchanged by the replay")
    # the same referral twice within one batch: one case
    evs = [referral("REF-B-1", "C-B1", "F-B1")] * 2
    rc, res, _ = feed(conf, [write_events("twice.jsonl", evs)])
    eq([("routed", "-"), ("duplicate", "-")], res.get(eid("ref:REF-B-1")), "in-batch duplicate")


# ------------------------------------------------------------------ step 9
def test_rejections():
    db = new_db("reject")
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    first = referral("REF-R-1", "C-R1", "F-R1")
    rc, res, _ = feed(conf, [write_events("r1.jsonl", [first])])
    eq("routed", res[first["event_id"]][0][0], "first referral routed")
    reused = referral("REF-R-2", "C-R2", "F-R2", name="ref:REF-R-1")  # same id, other body
    dup_ref = referral("REF-R-1", "C-R1", "F-R1", name="ref:REF-R-1-again", level=3)
    unknown = case_event("ce:unknown", "case.closed", "REF-NOPE")
    rc, res, _ = feed(conf, [write_events("r2.jsonl", [reused, dup_ref, unknown])],
                      "--retry-seconds", "0", "--offset-base", "100")
    eq(0, rc, "feed exit status")
    eq([("rejected", "event_id_reused")], res.get(reused["event_id"]), "event_id_reused")
    eq([("rejected", "duplicate_referral")], res.get(dup_ref["event_id"]), "duplicate_referral")
    eq([("rejected", "unknown_case")], res.get(unknown["event_id"]), "unknown_case")
    eq(1, count(db, "SELECT count(*) FROM cases"), "no case added by rejections")
    eq(("allocated", "family_hub"), case_row(db, "REF-R-1")[:2], "first case unchanged")
    dlq = psql(db, "SELECT string_agg(headers->0->>1, ',' ORDER BY id) FROM outbox WHERE kind = 'dlq'")
    eq("event_id_reused,duplicate_referral,unknown_case", dlq, "DLQ messages in the outbox")
    hdr = json.loads(psql(db, "SELECT headers FROM outbox WHERE kind = 'dlq' ORDER BY id LIMIT 1"))
    eq(["error", "error_detail", "source_topic", "source_partition", "source_offset"],
       [h[0] for h in hdr], "DLQ headers")
    eq("100", hdr[4][1], "DLQ source_offset")
    body = psql(db, "SELECT convert_from(payload, 'UTF8') FROM outbox WHERE kind = 'dlq' ORDER BY id LIMIT 1")
    eq(reused, json.loads(body), "DLQ payload is the original message")
    # replaying the rejected events writes nothing new
    rc, res, _ = feed(conf, [write_events("r2.jsonl", [reused, dup_ref, unknown])],
                      "--retry-seconds", "0", "--offset-base", "100")
    eq(3, count(db, "SELECT count(*) FROM outbox WHERE kind = 'dlq'"), "no second DLQ message on replay")
    eq([("duplicate", "-")], res.get(dup_ref["event_id"]), "replayed duplicate_referral is a duplicate")


# ------------------------------------------------------------------ the state machine
def test_transitions():
    db = new_db("trans")
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    refs = [
        referral("REF-T-CONSENT", "C-T1", "F-T1", consent=False),
        referral("REF-T-CONSENT2", "C-T2", "F-T2", consent=False),
        referral("REF-T-TRIAGE", "C-T3", "F-T3", level=None),
        referral("REF-T-TRIAGE2", "C-T4", "F-T4", level=None),
        referral("REF-T-SCHOOL", "C-T5", "F-T5", urn="900301",
                 needs=["school_attendance", "emotional_wellbeing"]),
        referral("REF-T-ALLOC", "C-T6", "F-T6"),
        referral("REF-T-RED", "C-T7", "F-T7", risk=True),
        referral("REF-T-SIGN", "C-T8", "F-T8", level=1),
    ]
    rc, res, _ = feed(conf, [write_events("t-refs.jsonl", refs)])
    eq(8, sum(1 for v in res.values() if v[0][0] == "routed"), "referrals routed")
    eq("awaiting_consent", case_row(db, "REF-T-CONSENT")[0], "consent_required -> awaiting_consent")
    eq("triage", case_row(db, "REF-T-TRIAGE")[0], "manual_triage -> triage")
    eq(("allocated", "school"), case_row(db, "REF-T-SCHOOL")[:2], "school -> allocated")
    eq(("allocated", "social_care", "social-care-duty", "red"), case_row(db, "REF-T-RED")[:4],
       "social_care -> allocated")
    eq(("closed", "signpost"), case_row(db, "REF-T-SIGN")[:2], "signpost -> closed")
    eq("t", case_row(db, "REF-T-SIGN")[6], "signposted case has closed_at")

    # (name, type, referral, extra, expected outcome, expected error)
    steps = [
        ("c1", "consent.given", "REF-T-CONSENT", {}, "rerouted", "-"),
        ("c2", "consent.given", "REF-T-CONSENT", {}, "rejected", "invalid_transition"),
        ("c3", "case.closed", "REF-T-CONSENT2", {}, "closed", "-"),
        ("t1", "case.triaged", "REF-T-TRIAGE",
         {"triage": {"route": "family_hub", "destination": "hub-kendal"}}, "rerouted", "-"),
        ("t2", "case.triaged", "REF-T-TRIAGE",
         {"triage": {"route": "school", "destination": "school-900301"}}, "rejected",
         "invalid_transition"),
        ("t3", "appointment.booked", "REF-T-TRIAGE2",
         {"appointment": {"id": "A-1", "starts_at": "2026-12-01T10:30:00Z", "location": "x",
                          "with": "y"}}, "rejected", "invalid_transition"),
        ("t4", "case.stepped_up", "REF-T-TRIAGE2", {}, "rejected", "invalid_transition"),
        ("t5", "case.closed", "REF-T-TRIAGE2", {}, "closed", "-"),
        ("a1", "consent.given", "REF-T-ALLOC", {}, "rejected", "invalid_transition"),
        ("a2", "case.triaged", "REF-T-ALLOC",
         {"triage": {"route": "family_hub", "destination": "hub-kendal"}}, "rejected",
         "invalid_transition"),
        ("s1", "case.stepped_up", "REF-T-SCHOOL", {}, "rerouted", "-"),
        ("s2", "case.stepped_up", "REF-T-SCHOOL", {}, "rerouted", "-"),
        ("s3", "case.stepped_down", "REF-T-SCHOOL", {}, "rerouted", "-"),
        ("s4", "case.stepped_down", "REF-T-SCHOOL", {}, "rerouted", "-"),
        ("s5", "case.no_coordinator", "REF-T-SCHOOL", {}, "rerouted", "-"),
        ("s6", "case.stepped_up", "REF-T-SCHOOL", {}, "rerouted", "-"),
        ("s7", "appointment.booked", "REF-T-SCHOOL",
         {"appointment": {"id": "A-7", "starts_at": "2026-12-01T10:30:00Z", "location": "x",
                          "with": "y"}}, "applied", "-"),
        ("s8", "appointment.cancelled", "REF-T-SCHOOL", {"appointment": {"id": "A-7"}},
         "applied", "-"),
        ("s9", "case.closed", "REF-T-SCHOOL", {}, "closed", "-"),
        ("s10", "case.closed", "REF-T-SCHOOL", {}, "rejected", "invalid_transition"),
        ("s11", "appointment.booked", "REF-T-SCHOOL",
         {"appointment": {"id": "A-8", "starts_at": "2026-12-01T10:30:00Z", "location": "x",
                          "with": "y"}}, "rejected", "invalid_transition"),
        ("s12", "case.stepped_down", "REF-T-SCHOOL", {}, "rejected", "invalid_transition"),
        ("sg1", "case.stepped_up", "REF-T-SIGN", {}, "rejected", "invalid_transition"),
    ]
    expect_after = {
        "s1": ("allocated", "targeted_family_help", "tfh-south-lakes", "amber", "stepped_up",
               "2026-11-25T17:00:00Z"),
        "s2": ("allocated", "social_care", "social-care-duty", "red", "stepped_up",
               "2026-11-24T13:00:00Z"),
        "s3": ("allocated", "targeted_family_help", "tfh-south-lakes", "amber", "stepped_down",
               "2026-11-25T17:00:00Z"),
        "s4": ("allocated", "family_hub", "hub-kendal", "green", "stepped_down",
               "2026-11-27T17:00:00Z"),
        "s5": ("allocated", "family_help_panel", "family-help-panel", "amber", "no_coordinator",
               "2026-11-25T17:00:00Z"),
        "s6": ("allocated", "social_care", "social-care-duty", "red", "stepped_up",
               "2026-11-24T13:00:00Z"),
    }
    # One feeder run per step so that each step meets the committed state of the last.
    for i, (name, typ, rid, extra, outcome, err) in enumerate(steps):
        ev = case_event("ce:" + name, typ, rid, **extra)
        before = case_row(db, rid)
        rc, res, _ = feed(conf, [write_events("step-%s.jsonl" % name, [ev])],
                          "--offset-base", str(1000 + i), "--retry-seconds", "0")
        eq([(outcome, err)], res.get(ev["event_id"]), "%s %s on %s" % (name, typ, rid))
        if outcome == "rejected":
            eq(before, case_row(db, rid), "%s: the case is unchanged" % name)
        if name in expect_after:
            eq(expect_after[name], case_row(db, rid)[:6], "%s: case after %s" % (name, typ))
    eq(("allocated", "family_hub", "hub-kendal", "green", "family_hub", "2026-11-27T17:00:00Z"),
       case_row(db, "REF-T-CONSENT")[:6], "consent.given re-runs the rules, due from the event")
    eq(("allocated", "family_hub", "hub-kendal", "green", "triaged", "2026-11-27T17:00:00Z"),
       case_row(db, "REF-T-TRIAGE")[:6], "case.triaged takes the staff decision")
    for rid in ("REF-T-CONSENT2", "REF-T-TRIAGE2", "REF-T-SCHOOL"):
        eq(("closed", "t"), (case_row(db, rid)[0], case_row(db, rid)[6]), rid + " closed")
    eq(7, count(db, "SELECT count(*) FROM decisions WHERE referral_id = 'REF-T-SCHOOL'"),
       "one decision per re-route")
    eq(count(db, "SELECT count(*) FROM decisions"),
       count(db, "SELECT count(*) FROM outbox WHERE kind = 'decision'"),
       "one frontdoor.decisions message per decision")
    eq(sum(1 for s in steps if s[4] == "rejected"),
       count(db, "SELECT count(*) FROM outbox WHERE kind = 'dlq'"), "rejections dead-lettered")
    eq(count(db, "SELECT count(*) FROM processed_events"), 8 + len(steps), "every event processed once")
    eq("referral.received,case.stepped_up,case.stepped_up,case.stepped_down,case.stepped_down,"
       "case.no_coordinator,case.stepped_up,appointment.booked,appointment.cancelled,case.closed",
       psql(db, "SELECT string_agg(action, ',' ORDER BY id) FROM audit_log WHERE referral_id = 'REF-T-SCHOOL'"),
       "audit trail of a case")


# ------------------------------------------------------------------ unknown case hold
def test_hold():
    db = new_db("hold")
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    early = case_event("h:early", "case.closed", "REF-H-1")
    early2 = case_event("h:early2", "case.closed", "REF-H-1", occurred="2026-11-24T10:00:00Z")
    other = referral("REF-H-OTHER", "C-H0", "F-H0")
    # the case event comes first: held, and the referral behind it is not stalled
    rc, res, _ = feed(conf, [write_events("h1.jsonl", [early, other])], "--retry-seconds", "600")
    eq(0, rc, "feed exit status")
    eq([("held", "-")], res.get(early["event_id"]), "case event before its referral is held")
    eq([("routed", "-")], res.get(other["event_id"]), "other events are not stalled")
    eq(1, count(db, "SELECT count(*) FROM held_events"), "held durably")
    eq(0, count(db, "SELECT count(*) FROM processed_events WHERE event_id = '%s'" % early["event_id"]),
       "held event not yet processed")
    # replayed while held: still one held row; the referral then arrives and releases it
    ref = referral("REF-H-1", "C-H1", "F-H1")
    rc, res, _ = feed(conf, [write_events("h2.jsonl", [early, ref, early2])],
                      "--retry-seconds", "600", "--drain-held", "--offset-base", "10")
    eq(0, rc, "feed with the referral")
    eq([("held", "-")], res.get(early["event_id"]), "replay of a held event stays held")
    eq(0, count(db, "SELECT count(*) FROM held_events"), "held events released")
    eq("closed", case_row(db, "REF-H-1")[0], "held case.closed applied after the referral")
    eq(1, count(db, "SELECT count(*) FROM processed_events WHERE event_id = '%s' AND outcome = 'closed'"
                % early["event_id"]), "held event processed once")
    eq(1, count(db, "SELECT count(*) FROM processed_events WHERE event_id = '%s' AND outcome = 'invalid_transition'"
                % early2["event_id"]), "the event behind it kept its order (closed twice: rejected)")
    # time is up: unknown_case
    lost = case_event("h:lost", "case.closed", "REF-H-NEVER")
    rc, res, _ = feed(conf, [write_events("h3.jsonl", [lost])], "--retry-seconds", "1",
                      "--drain-held", "--offset-base", "20")
    eq(0, rc, "feed until the hold expires")
    eq(1, count(db, "SELECT count(*) FROM processed_events WHERE event_id = '%s' AND outcome = 'unknown_case'"
                % lost["event_id"]), "expired hold gives unknown_case")
    eq(1, count(db, "SELECT count(*) FROM outbox WHERE kind = 'dlq' AND headers->0->>1 = 'unknown_case'"),
       "unknown_case dead-lettered with its source offset")


# ------------------------------------------------------------------ history rules
def test_history():
    db = new_db("hist")
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    school = referral("REF-K-1", "C-K1", "F-K1", urn="900301",
                      needs=["school_attendance"], occurred="2026-09-01T10:00:00Z")
    tfh = referral("REF-K-2", "C-K2", "F-K2", needs=["domestic_abuse"],
                   occurred="2026-09-01T10:00:00Z")
    old = referral("REF-K-3", "C-K3", "F-K3", urn="900301", needs=["school_attendance"],
                   occurred="2026-01-05T10:00:00Z")
    rc, res, _ = feed(conf, [write_events("k1.jsonl", [school, tfh, old])])
    eq(3, sum(1 for v in res.values() if v[0][0] == "routed"), "first referrals routed")
    eq("targeted_family_help", case_row(db, "REF-K-2")[1], "complex need -> targeted")
    # close REF-K-3 long ago, REF-K-1 recently
    closes = [case_event("k:close3", "case.closed", "REF-K-3", occurred="2026-02-01T10:00:00Z"),
              case_event("k:close1", "case.closed", "REF-K-1", occurred="2026-10-01T10:00:00Z")]
    feed(conf, [write_events("k2.jsonl", closes)], "--offset-base", "10")
    again = [
        # same child, a family need: known_child sends it back to the school (closed < 90 days)
        referral("REF-K-1B", "C-K1", "F-K1", needs=["parenting"], occurred="2026-11-23T10:00:00Z"),
        # another child of the family with an open targeted case: known_family
        referral("REF-K-2B", "C-K2-SIB", "F-K2", needs=["parenting"], occurred="2026-11-23T10:00:00Z"),
        # same child, case closed more than 90 days before: no history match
        referral("REF-K-3B", "C-K3", "F-K3", needs=["parenting"], occurred="2026-11-23T10:00:00Z"),
    ]
    rc, res, _ = feed(conf, [write_events("k3.jsonl", again)], "--offset-base", "20")
    eq(("allocated", "school", "school-900301", "green", "known_child"),
       case_row(db, "REF-K-1B")[:5], "rule 5 known_child from the database")
    eq(("allocated", "targeted_family_help", "tfh-south-lakes", "amber", "known_family"),
       case_row(db, "REF-K-2B")[:5], "rule 6 known_family from the database")
    eq(("family_hub", "family_hub"), (case_row(db, "REF-K-3B")[1], case_row(db, "REF-K-3B")[4]),
       "a case closed over 90 days before is not history")
    # history inside one batch: the second referral of a child sees the first
    pair = [referral("REF-K-4", "C-K4", "F-K4", urn="900301", needs=["school_attendance"]),
            referral("REF-K-4B", "C-K4", "F-K4", needs=["parenting"])]
    feed(conf, [write_events("k4.jsonl", pair)], "--offset-base", "30")
    eq("known_child", case_row(db, "REF-K-4B")[4], "history within one batch")


# ------------------------------------------------------------------ stream helpers
def stream(prefix, n):
    evs = []
    for i in range(n):
        rid = "REF-%s-%04d" % (prefix, i)
        evs.append(referral(rid, "C-%s-%d" % (prefix, i % (n // 3 or 1)), "F-%s-%d" % (prefix, i % 7),
                            consent=(i % 4 != 0)))
        if i % 3 == 0:
            evs.append(case_event("%s:close:%d" % (prefix, i), "case.closed", rid))
    return evs


def stream_checks(db, evs, what):
    n_ref = sum(1 for e in evs if e["type"] == "referral.received")
    n_ce = len(evs) - n_ref
    eq(n_ref, count(db, "SELECT count(*) FROM cases"), what + ": one case per referral")
    eq(len(evs), count(db, "SELECT count(*) FROM processed_events"), what + ": every event processed once")
    eq(n_ref, count(db, "SELECT count(*) FROM decisions"), what + ": one decision per referral")
    eq(n_ref, count(db, "SELECT count(*) FROM outbox WHERE kind = 'decision'"), what + ": one message per decision")
    eq(n_ref + n_ce, count(db, "SELECT count(*) FROM audit_log"), what + ": one audit row per change")
    eq(n_ce, count(db, "SELECT count(*) FROM cases WHERE state = 'closed' AND rule <> 'universal'"),
       what + ": every close applied once")
    eq(0, count(db, "SELECT count(*) FROM held_events"), what + ": nothing left held")


def test_restart():
    db = new_db("restart")
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    evs = stream("RS", 120)
    path = write_events("restart.jsonl", evs)
    p = subprocess.Popen([FEED, "--config", conf, "--interval-ms", "5", "--batch", "10", path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.4)
    p.send_signal(signal.SIGKILL)
    p.wait()
    mid = count(db, "SELECT count(*) FROM processed_events")
    check(0 < mid < len(evs), "killed mid-stream (%d of %d processed)" % (mid, len(evs)))
    rc, res, _ = feed(conf, [path], "--batch", "10", "--drain-held")
    eq(0, rc, "restarted feed exit status")
    eq(mid, sum(1 for v in res.values() if v[0][0] == "duplicate"),
       "after restart, what was committed is a duplicate")
    stream_checks(db, evs, "restart")


def test_db_restart():
    # a server of this test's own: stopping the fixture's would fail the tests running
    # beside this one
    svc = os.path.join(TMP, "pg-private")
    env = dict(os.environ, FRONTDOOR_SERVICES_DIR=svc)
    services = os.path.join(SRC, "scripts", "services")
    subprocess.run([services, "postgres", "start"], env=env, check=True, capture_output=True)
    try:
        db_restart_on(env, svc)
    finally:
        subprocess.run([services, "postgres", "stop"], env=env, capture_output=True)


def db_restart_on(env, svc):
    pg = {}
    with open(os.path.join(svc, "postgres.env")) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            pg[k] = v.strip('"')
    db = pg["FD_PG_CONNINFO"]
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    evs = stream("PG", 150)
    path = write_events("pgrestart.jsonl", evs)
    p = subprocess.Popen([FEED, "--config", conf, "--interval-ms", "10", "--batch", "8",
                          "--drain-held", "--timeout", "150", path],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.6)
    pg_ctl = [os.path.join(pg["FD_PG_BIN"], "pg_ctl"), "-D", os.path.join(pg["FD_PG_DIR"], "data")]
    as_pg = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(as_pg + pg_ctl + ["-m", "fast", "-w", "stop"], check=True, capture_output=True)
    time.sleep(1.5)  # down for a while: the store must wait and retry
    # the same options as scripts/services starts it with (pg_ctl start does not keep them)
    opts = ("-c listen_addresses=127.0.0.1 -c port=%s -c unix_socket_directories=%s"
            " -c max_connections=200" % (pg["FD_PG_PORT"], pg["FD_PG_DIR"]))
    subprocess.run(as_pg + pg_ctl + ["-l", os.path.join(pg["FD_PG_DIR"], "server.log"), "-w",
                                     "-o", opts, "start"], check=True, capture_output=True)
    out, err = p.communicate(timeout=200)
    eq(0, p.returncode, "feed survives a PostgreSQL restart")
    check("not ready" in err, "the store reported not-ready while the database was down")
    lines = [l.split() for l in out.splitlines()]
    eq(len(evs), len(lines), "every event completed once")
    stream_checks(db, evs, "db restart")


def test_two_feeders():
    db = new_db("two")
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    evs = stream("TW", 300)
    path = write_events("two.jsonl", evs)
    procs = [subprocess.Popen([FEED, "--config", conf, "--batch", "16", "--drain-held",
                               "--partition", str(k), path],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for k in range(2)]
    outs = [p.communicate(timeout=200)[0] for p in procs]
    eq([0, 0], [p.returncode for p in procs], "both feeders exit 0")
    routed = sum(1 for o in outs for l in o.splitlines() if l.split()[2] == "routed")
    eq(sum(1 for e in evs if e["type"] == "referral.received"), routed,
       "each referral routed by exactly one feeder")
    stream_checks(db, evs, "two feeders")


def test_publish():
    # the outbox publisher against the embedded Kafka cluster of the shipped configuration
    db = new_db("publish")
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    sample = os.path.join(SPEC, "examples", "referrals.jsonl")
    bad = case_event("p:unknown", "case.closed", "REF-P-NONE")
    rc, res, out = feed(conf, [sample, write_events("p.jsonl", [bad])], "--publish",
                        "--retry-seconds", "0", timeout=90)
    eq(0, rc, "feed with the publisher")
    eq(0, count(db, "SELECT count(*) FROM outbox WHERE kind = 'decision'"),
       "every decision message published, then let go")
    eq(1, count(db, "SELECT count(*) FROM outbox WHERE kind = 'dlq' AND published_at IS NOT NULL"),
       "the DLQ message published and kept, marked")
    eq(25, count(db, "SELECT count(*) FROM decisions"), "the decisions themselves stay")


# ------------------------------------------------------------------ values stored verbatim
def test_verbatim():
    # rows are written many to a statement as array literals: quotes, backslashes, braces,
    # commas, the word NULL, empty strings and non-ASCII must come back exactly
    db = new_db("verbatim")
    conf = config_for(db)
    eq(0, migrate(conf).returncode, "migrate")
    odd = ['C-"quoted"', 'C-back\\slash\\', 'C-{brace},comma', 'NULL',
           'C-\u00e9\u00e8-\u4e2d-\U0001f600', "C-'single'", 'C-tab\there', 'C-\\"mix\\"{}']
    evs = [referral("REF-V-%d" % i, child, "F-" + child, name="verbatim:%d" % i)
           for i, child in enumerate(odd)]
    rc, res, _ = feed(conf, [write_events("verbatim.jsonl", evs)])
    eq(0, rc, "feed exit status")
    for i, child in enumerate(odd):
        got = psql(db, "SELECT child_id || '|' || family_id FROM cases WHERE referral_id = 'REF-V-%d'" % i)
        eq(child + "|F-" + child, got, "child and family ids stored verbatim (%r)" % child)
        body = psql(db, "SELECT convert_from(referral_body, 'UTF8') FROM cases WHERE referral_id = 'REF-V-%d'" % i)
        eq(json.dumps(evs[i]), body, "referral body stored byte for byte (%r)" % child)
    eq(len(odd), count(db, "SELECT count(*) FROM decisions"), "one decision each")
    eq(len(odd), count(db, "SELECT count(*) FROM outbox WHERE kind = 'decision'"), "one message each")


def main():
    tests = [test_schema, test_publish, test_samples_and_replay, test_rejections, test_transitions, test_hold,
             test_history, test_restart, test_db_restart, test_two_feeders,
             test_verbatim]
    only = sys.argv[1:]
    for t in tests:
        if only and t.__name__ not in only:
            continue
        try:
            t()
        except Exception as e:  # a crash is a failure, never a skip
            check(False, "%s raised %r" % (t.__name__, e))
    shutil.rmtree(TMP, ignore_errors=True)
    print("casestore: %d passed, %d failed" % (passed, failed))
    sys.exit(0 if failed == 0 and passed > 0 else 1)


if __name__ == "__main__":
    main()
