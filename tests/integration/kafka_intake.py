#!/usr/bin/python3
"""Cases and checks of kafka_intake.sh.

    kafka_intake.py make DIR SPEC_DIR     write one file per message and DIR/cases.json
    kafka_intake.py check DIR             compare what the daemon produced (DIR/*.jsonl,
                                          from kafka_read.py) with the cases; prints
                                          PASS/FAIL lines
"""
import json
import os
import re
import sys

UUID = "00000000-0000-4000-8000-0000000009%02d"


def event(n, typ, **extra):
    e = {"schema_version": 1, "event_id": UUID % n, "type": typ,
         "occurred_at": "2026-11-23T10:15:00Z"}
    e.update(extra)
    return e


def make(d, spec):
    cases = []  # name, topic ("referrals" | "case-events"), key, want ("valid" | error), file

    def add(name, topic, data, want):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else json.dumps(data).encode())
        cases.append({"name": name, "topic": topic, "key": "key-" + name, "want": want,
                      "file": path, "null": False})

    # the spec's unusable examples, in order, with the error each must give
    with open(os.path.join(spec, "examples/unusable.jsonl"), "rb") as f:
        lines = f.read().split(b"\n")
    with open(os.path.join(spec, "examples/unusable.expected.jsonl")) as f:
        expected = [json.loads(x) for x in f if x.strip()]
    for exp in expected:
        add("unusable-%d" % exp["line"], "referrals", lines[exp["line"] - 1], exp["error"])

    big = b'{"schema_version": 1, "pad": "' + b"x" * 70000 + b'"}'
    add("too-large", "referrals", big, "too_large")
    huge = b'{"schema_version": 1, "pad": "' + b"y" * 150000 + b'"}'
    add("too-large-truncated", "referrals", huge, "too_large")
    add("invalid-utf8", "referrals",
        b'{"schema_version": 1, "event_id": "\xff\xfe", "type": "referral.received"}',
        "invalid_json")
    add("json-array", "referrals", b"[1, 2, 3]", "invalid_json")
    add("json-string", "referrals", b'"a string"', "invalid_json")
    add("empty", "referrals", b"", "invalid_json")
    add("null-value", "referrals", b"", "invalid_json")
    cases[-1]["null"] = True
    add("schema-version-string", "referrals",
        dict(event(1, "referral.received", referral={"id": "REF-IT-1"}), schema_version="1"),
        "unsupported_schema_version")
    add("case-type-on-referrals", "referrals",
        event(2, "consent.given", case={"referral_id": "REF-IT-2"}), "unknown_type")
    add("referral-on-case-events", "case-events",
        event(3, "referral.received", referral={"id": "REF-IT-3"}), "unknown_type")
    e = event(4, "referral.received", referral={"id": "REF-IT-4"})
    del e["occurred_at"]
    add("occurred-at-missing", "referrals", e, "missing_field")
    add("occurred-at-invalid", "referrals",
        dict(event(5, "referral.received", referral={"id": "REF-IT-5"}), occurred_at="yesterday"),
        "invalid_field")
    add("referral-id-invalid", "referrals",
        event(6, "referral.received", referral={"id": "has spaces!"}), "invalid_field")
    add("case-referral-id-missing", "case-events",
        event(7, "consent.given", case={}), "missing_field")
    add("appointment-starts-at-invalid", "case-events",
        event(8, "appointment.booked", case={"referral_id": "REF-IT-8"},
              appointment={"id": "A-1", "starts_at": "soon", "location": "Hub", "with": "Worker"}),
        "invalid_field")
    add("triage-route-unknown", "case-events",
        event(9, "case.triaged", case={"referral_id": "REF-IT-9"},
              triage={"route": "nowhere", "destination": "hub-kendal"}), "invalid_field")
    add("triage-destination-unknown", "case-events",
        event(10, "case.triaged", case={"referral_id": "REF-IT-10"},
              triage={"route": "family_hub", "destination": "no-such-team"}), "invalid_field")

    # usable: a case event (an appointment on an allocated case: applied, no decision, no
    # DLQ; held until its referral arrives if it comes first) and every sample referral
    add("appointment-booked", "case-events",
        event(11, "appointment.booked", case={"referral_id": "REF-EX-004"},
              appointment={"id": "A-11", "starts_at": "2026-12-01T10:00:00Z", "location": "Hub",
                           "with": "Worker"}), "valid")
    with open(os.path.join(spec, "examples/referrals.jsonl"), "rb") as f:
        refs = [x for x in f.read().split(b"\n") if x.strip()]
    with open(os.path.join(spec, "examples/expected.jsonl")) as f:
        exp = [json.loads(x) for x in f if x.strip()]
    for i, (raw, want) in enumerate(zip(refs, exp)):
        name = "referral-%02d" % (i + 1)
        add(name, "referrals", raw, "valid")
        cases[-1]["decision"] = want
        cases[-1]["key"] = want["referral_id"]
    with open(os.path.join(d, "cases.json"), "w") as f:
        json.dump(cases, f)
    # personal data of the samples, which must never reach a log line or a decision
    pii = set()
    for raw in refs:
        r = json.loads(raw)["referral"]
        for path in (("referrer", "name"), ("referrer", "email"), ("child", "first_name"),
                     ("child", "last_name"), ("child", "date_of_birth"),
                     ("child", "postcode"), ("family", "contact", "name"),
                     ("family", "contact", "mobile"), ("family", "contact", "email"),
                     ("summary",)):
            v = r
            for p in path:
                v = v.get(p) if isinstance(v, dict) else None
            if isinstance(v, str) and len(v) >= 4:
                pii.add(v)
    with open(os.path.join(d, "pii.json"), "w") as f:
        json.dump(sorted(pii), f)
    print(len(cases))


def load(path):
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


def ok(cond, what):
    print(("PASS " if cond else "FAIL ") + what)


def check(d):
    with open(os.path.join(d, "cases.json")) as f:
        cases = json.load(f)
    sources = {"referrals": load(os.path.join(d, "referrals.jsonl")),
               "case-events": load(os.path.join(d, "case-events.jsonl"))}
    dlq = load(os.path.join(d, "dlq.jsonl"))
    decisions = load(os.path.join(d, "decisions.jsonl"))
    topics = {"referrals": open(os.path.join(d, "topic.referrals")).read().strip(),
              "case-events": open(os.path.join(d, "topic.case-events")).read().strip()}
    dlq_limit = int(open(os.path.join(d, "dlq_limit")).read())

    # where each case landed on its source topic
    src = {}
    for topic, msgs in sources.items():
        for m in msgs:
            src[m["key"]] = (topic, m)
    dlq_by_key = {}
    for m in dlq:
        dlq_by_key.setdefault(m["key"], []).append(m)
    dec_by_key = {}
    for m in decisions:
        dec_by_key.setdefault(m["key"], []).append(m)

    unusable = [c for c in cases if c["want"] != "valid"]
    valid = [c for c in cases if c["want"] == "valid"]
    ok(len(dlq) == len(unusable), "DLQ holds %d messages, want %d" % (len(dlq), len(unusable)))
    for c in unusable:
        got = dlq_by_key.get(c["key"], [])
        if len(got) != 1:
            ok(False, "%s: %d DLQ messages, want 1" % (c["name"], len(got)))
            continue
        m, h = got[0], got[0]["headers"]
        topic, orig = src[c["key"]]
        original = open(c["file"], "rb").read()
        ok(h.get("error") == c["want"], "%s: error header %r, want %r" % (c["name"], h.get("error"), c["want"]))
        ok(bool(h.get("error_detail")), "%s: error_detail present" % c["name"])
        ok(h.get("source_topic") == topics[topic], "%s: source_topic %r" % (c["name"], h.get("source_topic")))
        ok(h.get("source_partition") == str(orig["partition"]),
           "%s: source_partition %r, message was on %d" % (c["name"], h.get("source_partition"), orig["partition"]))
        ok(h.get("source_offset") == str(orig["offset"]),
           "%s: source_offset %r, message was at %d" % (c["name"], h.get("source_offset"), orig["offset"]))
        payload = bytes.fromhex(m["payload_hex"])
        if c["name"] == "too-large-truncated":
            ok(h.get("truncated") == "true", "%s: truncated header" % c["name"])
            ok(0 < len(payload) < len(original) and len(payload) <= dlq_limit and
               original.startswith(payload),
               "%s: DLQ payload is a prefix of the original within the limit (%d of %d bytes)"
               % (c["name"], len(payload), len(original)))
        else:
            ok("truncated" not in h, "%s: no truncated header" % c["name"])
            ok(payload == original, "%s: DLQ payload is the original bytes (%d vs %d)"
               % (c["name"], len(payload), len(original)))
        # error_detail must not echo message contents
        ok(not re.search(r"Sample|Referrer|example\.org|xxxxxxxx", h.get("error_detail", "")),
           "%s: error_detail carries no message contents" % c["name"])

    refs = [c for c in valid if "decision" in c]
    ok(len(decisions) == len(refs), "decisions topic holds %d messages, want %d" % (len(decisions), len(refs)))
    fields = ["schema_version", "type", "event_id", "cause_event_id", "referral_id", "route",
              "destination", "priority", "rule", "reasons", "decided_at", "decision_due_at",
              "state"]
    for c in refs:
        got = dec_by_key.get(c["key"], [])
        if len(got) != 1:
            ok(False, "%s: %d decisions keyed %s, want 1" % (c["name"], len(got), c["key"]))
            continue
        dec = json.loads(bytes.fromhex(got[0]["payload_hex"]))
        want = c["decision"]
        ok(list(dec.keys()) == fields, "%s: decision fields %s" % (c["name"], list(dec.keys())))
        ok(dec.get("type") == "case.routed" and dec.get("schema_version") == 1,
           "%s: type case.routed, schema_version 1" % c["name"])
        for k in ("referral_id", "cause_event_id", "route", "destination", "priority", "rule",
                  "decision_due_at"):
            ok(dec.get(k) == want[k], "%s: %s %r, want %r" % (c["name"], k, dec.get(k), want[k]))
        ok(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
                        dec.get("event_id", "")) is not None,
           "%s: event_id is a new (version 7) UUID" % c["name"])
        ok(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", dec.get("decided_at", "")) is not None,
           "%s: decided_at %r" % (c["name"], dec.get("decided_at")))
        states = {"consent_required": "awaiting_consent", "manual_triage": "triage",
                  "signpost": "closed"}
        ok(dec.get("state") == states.get(dec.get("route"), "allocated"),
           "%s: state %r for route %r" % (c["name"], dec.get("state"), dec.get("route")))
        ok(isinstance(dec.get("reasons"), list) and dec["reasons"], "%s: reasons" % c["name"])
    ok(all(not dlq_by_key.get(c["key"]) for c in valid), "no usable event was dead-lettered")

    pii = json.load(open(os.path.join(d, "pii.json")))
    log = open(os.path.join(d, "daemon.log"), encoding="utf-8", errors="replace").read()
    leaked = [p for p in pii if p in log]
    ok(not leaked, "no personal data in the daemon's log (%s)" % leaked[:3])
    dec_text = "".join(bytes.fromhex(m["payload_hex"]).decode() for m in decisions)
    leaked = [p for p in pii if p in dec_text]
    ok(not leaked, "no personal data on the decisions topic (%s)" % leaked[:3])


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2], sys.argv[3])
    else:
        check(sys.argv[2])
