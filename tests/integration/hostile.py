#!/usr/bin/python3
"""The hostile corpus (tests/hostile/) for hostile.sh.

    hostile.py list CORPUS PHASE      "topic key file" lines to produce, in corpus order
    hostile.py count CORPUS WHAT      a number: dlq1 (phase-1 dead letters), routed,
                                      dlq (all dead letters), decisions, entries
    hostile.py check CORPUS DIR       compare what the daemon did (DIR/dlq.jsonl,
                                      DIR/decisions.jsonl from kafka_read.py, DIR/sql-*.json
                                      from PostgreSQL, DIR/daemon.log) with expected.tsv;
                                      prints PASS/FAIL lines
"""
import json
import os
import re
import sys

sys.setrecursionlimit(4000)  # the corpus nests 1000 deep in a usable event


def manifest(corpus):
    rows = []
    with open(os.path.join(corpus, "expected.tsv"), encoding="utf-8") as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            if line.strip():
                rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    for i, r in enumerate(rows):
        # keyed by referral id as producers do (events.md); a placeholder key otherwise
        r["key"] = r["referral"] if r["referral"] != "-" else "h-%03d" % (i + 1)
        r["path"] = os.path.join(corpus, r["file"])
        with open(r["path"], "rb") as f:
            r["bytes"] = f.read()
        r["event_id"] = None
        try:
            ev = json.loads(r["bytes"].decode("utf-8"))
            if isinstance(ev, dict) and isinstance(ev.get("event_id"), str):
                r["event_id"] = ev["event_id"].lower()
            r["json"] = ev
        except (ValueError, RecursionError):  # not JSON, or nested too deep for Python
            r["json"] = None
    return rows


def cmd_list(corpus, phase):
    for r in manifest(corpus):
        if r["phase"] == phase:
            print(r["topic"], r["key"], r["path"])


def cmd_count(corpus, what):
    rows = manifest(corpus)
    n = {
        "dlq1": sum(r["outcome"] == "dlq" and r["phase"] == "1" for r in rows),
        "routed": sum(r["outcome"] == "routed" for r in rows),
        "dlq": sum(r["outcome"] == "dlq" for r in rows),
        "decisions": sum(r["outcome"] in ("routed", "rerouted") for r in rows),
        "entries": len(rows),
    }[what]
    print(n)


def load_jsonl(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def load_sql(path):
    with open(path) as f:
        text = f.read().strip()
    return json.loads(text) if text else []


# the outcomes found against the database (events.md step 9): the daemon logs each
STEP9 = ("event_id_reused", "duplicate_referral", "unknown_case", "invalid_transition")


def ok(cond, what):
    print(("PASS " if cond else "FAIL ") + what)


def usable_id(v):
    """What a child or family id column must hold: the JSON string itself when it is a
    non-empty string PostgreSQL text can hold, else NULL."""
    return v if isinstance(v, str) and v and "\x00" not in v else None


def dig(obj, *path):
    for p in path:
        obj = obj.get(p) if isinstance(obj, dict) else None
    return obj


def check(corpus, d):
    rows = manifest(corpus)
    files = sorted(os.listdir(os.path.join(corpus, "events")))
    listed = sorted(os.path.basename(r["file"]) for r in rows)
    ok(files == listed, "expected.tsv lists every corpus file once (%d files, %d rows)"
       % (len(files), len(rows)))
    ok(len(rows) >= 150, "corpus holds %d events (at least 150)" % len(rows))

    dlq = load_jsonl(os.path.join(d, "dlq.jsonl"))
    decisions = load_jsonl(os.path.join(d, "decisions.jsonl"))
    cases = {c["referral_id"]: c for c in load_sql(os.path.join(d, "sql-cases.json"))}
    processed = {p["event_id"]: p for p in load_sql(os.path.join(d, "sql-processed.json"))}
    topics = {"referrals": open(os.path.join(d, "topic.referrals")).read().strip(),
              "case-events": open(os.path.join(d, "topic.case-events")).read().strip()}

    # A dead letter is its original message's bytes, so bytes find its corpus entry (no
    # two entries dead-lettered have the same bytes).
    dlq_by_bytes = {}
    for m in dlq:
        dlq_by_bytes.setdefault(bytes.fromhex(m["payload_hex"]), []).append(m)
    dead = [r["bytes"] for r in rows if r["outcome"] == "dlq"]
    ok(len(set(dead)) == len(dead), "dead-lettered corpus entries differ from each other")
    dec_by_cause = {}
    for m in decisions:
        dec = json.loads(bytes.fromhex(m["payload_hex"]))
        dec["_key"] = m["key"]
        # cause_event_id is the event_id as sent; UUIDs compare in either case
        dec_by_cause.setdefault(str(dec.get("cause_event_id")).lower(), []).append(dec)

    log = open(os.path.join(d, "daemon.log"), encoding="utf-8", errors="replace").read()
    log_lines = log.splitlines()
    n_dlq = sum(r["outcome"] == "dlq" for r in rows)
    n_dec = sum(r["outcome"] in ("routed", "rerouted") for r in rows)
    ok(len(dlq) == n_dlq, "DLQ holds %d messages, want %d" % (len(dlq), n_dlq))
    ok(len(decisions) == n_dec, "decisions topic holds %d messages, want %d"
       % (len(decisions), n_dec))
    ok(len(cases) == sum(r["outcome"] == "routed" for r in rows),
       "cases table holds %d cases, want %d (and still exists)"
       % (len(cases), sum(r["outcome"] == "routed" for r in rows)))

    for r in rows:
        name, want, detail = os.path.basename(r["file"]), r["outcome"], r["detail"]
        got_dlq = dlq_by_bytes.get(r["bytes"], []) if want == "dlq" else \
            [m for m in dlq_by_bytes.get(r["bytes"], []) if m["key"] == r["key"]]
        if want == "dlq":
            if len(got_dlq) != 1:
                ok(False, "%s: %d DLQ messages, want 1 with error %s" % (name, len(got_dlq), detail))
                continue
            m, h = got_dlq[0], got_dlq[0]["headers"]
            ok(h.get("error") == detail, "%s: error %r, want %r" % (name, h.get("error"), detail))
            ok("truncated" not in h, "%s: DLQ payload is the whole message" % name)
            ok(m["key"] == r["key"], "%s: DLQ key %r, produced %r" % (name, m["key"], r["key"]))
            ok(h.get("source_topic") == topics[r["topic"]],
               "%s: source_topic %r" % (name, h.get("source_topic")))
            det = h.get("error_detail", "")
            ok(det and not re.search(r"DROP|victim|\(\(|Sample|\r|\n", det),
               "%s: error_detail present and free of message text (%r)" % (name, det[:80]))
            if r["event_id"] and r["outcome"] == "dlq" and detail not in ("event_id_reused",):
                ok(r["event_id"] not in dec_by_cause, "%s: no decision" % name)
            if detail in STEP9:
                ok(any(("event=" + r["event_id"]) in x and ("error=" + detail) in x
                       for x in log_lines), "%s: a log line says event %s: %s"
                   % (name, r["event_id"], detail))
            continue
        ok(not got_dlq, "%s: not dead-lettered (got %s)"
           % (name, [x["headers"].get("error") for x in got_dlq]))
        eid = r["event_id"]
        p = processed.get(eid)
        if want in ("routed", "rerouted"):
            decs = dec_by_cause.get(eid, [])
            if len(decs) != 1:
                ok(False, "%s: %d decisions caused by %s, want 1" % (name, len(decs), eid))
                continue
            dec = decs[0]
            ok(dec.get("rule") == detail, "%s: rule %r, want %r" % (name, dec.get("rule"), detail))
            ok(dec.get("referral_id") == r["referral"] and dec["_key"] == r["referral"],
               "%s: decision for %r keyed %r" % (name, dec.get("referral_id"), dec["_key"]))
            ok(p is not None and p["outcome"] == want,
               "%s: processed as %r, want %r" % (name, p and p["outcome"], want))
        if want == "routed":
            c = cases.get(r["referral"])
            if c is None:
                ok(False, "%s: no case %r in the database" % (name, r["referral"]))
                continue
            ok(bytes.fromhex(c["body"]) == r["bytes"],
               "%s: referral_body holds the produced bytes (%d bytes)" % (name, len(r["bytes"])))
            ref = dig(r["json"], "referral")
            for col, path in (("child_id", ("child", "id")), ("family_id", ("family", "id"))):
                want_v = usable_id(dig(ref, *path))
                ok(c[col] == want_v, "%s: %s %r, want %r" % (name, col, c[col], want_v))
        elif want in ("applied", "closed"):
            ok(p is not None and p["outcome"] == want,
               "%s: processed as %r, want %r" % (name, p and p["outcome"], want))
            ok(eid not in dec_by_cause, "%s: no decision" % name)
            if want == "closed":
                c = cases.get(r["referral"])
                ok(c is not None and c["state"] == "closed", "%s: case %s closed" % (name, r["referral"]))
        elif want == "duplicate":
            ok(len(dec_by_cause.get(eid, [])) == 1,
               "%s: still exactly one decision for event %s" % (name, eid))
            ok(p is not None and p["outcome"] == "routed", "%s: first processing kept" % name)

    errors = [x for x in log_lines if x.startswith("level=error")]
    ok(not errors, "no error lines in the daemon's log (%s)" % errors[:2])
    for s in ("DROP TABLE", "victim@example.net", "((child_first_name))", "Sample", "07700"):
        ok(s not in log, "the daemon's log never shows %r" % s)


if __name__ == "__main__":
    if sys.argv[1] == "list":
        cmd_list(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "count":
        cmd_count(sys.argv[2], sys.argv[3])
    else:
        check(sys.argv[2], sys.argv[3])
