#!/usr/bin/python3
"""Events carrying canaries (unique values) in every personal field, for canary.sh.

    canary.py make DIR        write DIR/events/*.json, DIR/produce-N.list ("topic key file"
                              lines of phase N) and DIR/canaries.json; prints the counts
                              "decisions dead_letters"
    canary.py scan DIR FILE...  every canary found in the files (case-insensitive), one
                              "file: canary (field)" line each; exit 1 when any is found

A canary is a value no code, configuration or id contains, so finding one anywhere means
that field's value got there. Each personal field of events.md has its own canary per
event: names, organisation, emails and phones (whole, and their local part / digits),
dates of birth, postcodes (whole and without their space: the district alone may be
logged), free text (summary, reason, outcome, appointment location and with).
"""
import copy
import json
import os
import sys

OCCURRED = "2026-11-23T10:15:00Z"
canaries = {}  # value -> field


def canary(field, n, value=None):
    v = value or "Kx%sq%02dZ" % (field.replace(".", "").replace("_", "").capitalize(), n)
    assert v not in canaries, v
    canaries[v] = field
    return v


def phone(n):
    # an 11-digit UK mobile no id or time contains; logged only masked (07*******NN)
    v = "07700 9%05d" % (31700 + n)
    canaries[v] = "mobile"
    canaries[v.replace(" ", "")] = "mobile digits"
    return v


def email(field, n):
    local = canary(field + ".local", n)
    v = "%s@canary%02d.example.net" % (local, n)
    canaries[v] = field
    return v


def dob(n):
    # dates of birth nothing else in a run holds (occurred_at and deadlines are 2026)
    v = "20%02d-%02d-%02d" % (10 + n % 7, 1 + n % 12, 3 + n % 25)
    canaries[v] = "date_of_birth"
    return v


def postcode(n, district):
    inward = "%d%s" % (n % 10, "QZ" if n % 2 else "XJ")
    v = "%s %s" % (district, inward)
    canaries[v] = "postcode"
    canaries[district + inward] = "postcode without space"
    return v


def referral_event(n, rid, **over):
    r = {
        "id": rid,
        "source": "school",
        "referrer": {"name": canary("referrer.name", n),
                     "organisation": canary("referrer.organisation", n),
                     "email": email("referrer.email", n), "phone": phone(50 + n)},
        "child": {"id": "C-CAN-%02d" % n, "first_name": canary("child.first_name", n),
                  "last_name": canary("child.last_name", n), "date_of_birth": dob(n),
                  "send": False, "school_urn": "900301", "postcode": postcode(n, "LA9")},
        "family": {"id": "F-CAN-%02d" % n,
                   "contact": {"name": canary("contact.name", n), "mobile": phone(n),
                               "email": email("contact.email", n), "language": "en"},
                   "consent": {"early_help": True, "sms": True, "email": True}},
        "level_of_need": 2,
        "needs": ["school_attendance", "emotional_wellbeing"],
        "safeguarding": {"immediate_risk": False},
        "summary": "Concerns: " + canary("summary", n) + " said so.",
    }
    for path, value in over.items():
        obj = r
        parts = path.split("__")
        for p in parts[:-1]:
            obj = obj[p]
        obj[parts[-1]] = value
    return {"schema_version": 1, "event_id": "ca000000-0000-4000-8000-%012d" % n,
            "type": "referral.received", "occurred_at": OCCURRED, "referral": r}


def case_event(n, typ, rid, **extra):
    e = {"schema_version": 1, "event_id": "ca000000-0000-4000-8000-%012d" % (500 + n),
         "type": typ, "occurred_at": "2026-11-24T14:00:00Z", "case": {"referral_id": rid}}
    e.update(extra)
    return e


def make(d):
    os.makedirs(os.path.join(d, "events"), exist_ok=True)
    phases = {1: [], 2: []}
    want = {"decisions": 0, "dlq": 0}

    def add(phase, name, topic, key, data, outcome):
        path = os.path.join(d, "events", name + ".json")
        with open(path, "wb") as f:
            f.write(data if isinstance(data, bytes) else json.dumps(data).encode())
        phases[phase].append("%s %s %s" % (topic, key, path))
        want[outcome] += 1

    # referrals on every kind of route, each field a canary
    routes = [
        ("school", {}),
        ("family_hub", {"needs": ["parenting"]}),
        ("no_consent", {"family__consent": {"early_help": False}}),
        ("safeguarding", {"safeguarding": {"immediate_risk": True}}),
        ("incomplete-dob", {"child__date_of_birth": canary("date_of_birth.text", 5)}),
        ("age-out", {"child__date_of_birth": "1990-02-14"}),
        ("postcode-no-shape", {"child__postcode": canary("postcode.text", 7), "needs": ["housing"]}),
        ("youth", {"child__date_of_birth": "2011-04-09", "needs": ["neet"]}),
        ("triage-target", {"level_of_need": None}),
    ]
    canaries["1990-02-14"] = "date_of_birth"
    canaries["2011-04-09"] = "date_of_birth"
    made = {}
    for n, (name, over) in enumerate(routes, start=1):
        rid = "REF-CAN-%02d" % n
        made[n] = referral_event(n, rid, **over)
        add(1, "referral-%s" % name, "referrals", rid, made[n], "decisions")

    # unusable referrals whose bad or surrounding values are canaries
    bad = json.dumps(referral_event(20, "REF-CAN-20")).encode()
    add(1, "truncated", "referrals", "REF-CAN-20", bad[: len(bad) * 2 // 3], "dlq")
    e = referral_event(21, "REF-CAN-21")
    e["occurred_at"] = canary("occurred_at.text", 21)
    add(1, "occurred-at-canary", "referrals", "REF-CAN-21", e, "dlq")
    e = referral_event(22, canary("referral.id.text", 22) + " x")
    add(1, "referral-id-canary", "referrals", "REF-CAN-22", e, "dlq")
    e = referral_event(23, "REF-CAN-23")
    e["event_id"] = canary("event_id.text", 23)
    add(1, "event-id-canary", "referrals", "REF-CAN-23", e, "dlq")
    e = referral_event(24, "REF-CAN-24")
    e["schema_version"] = canary("schema_version.text", 24)
    add(1, "schema-canary", "referrals", "REF-CAN-24", e, "dlq")
    e = referral_event(25, "REF-CAN-25")
    e["type"] = canary("type.text", 25)
    add(1, "type-canary", "referrals", "REF-CAN-25", e, "dlq")
    e = referral_event(26, "REF-CAN-26")
    e["referral"]["summary"] = canary("summary.big", 26) + " " + "x" * 70000
    add(1, "too-large", "referrals", "REF-CAN-26", e, "dlq")
    add(1, "invalid-utf8", "referrals", "REF-CAN-27",
        json.dumps(referral_event(27, "REF-CAN-27")).encode().replace(b"said so", b"said \xff"),
        "dlq")

    # case events on the cases above, free text canaries everywhere
    appt = lambda n: {"id": "A-%d" % n, "starts_at": "2026-12-01T10:30:00Z",
                      "location": canary("appointment.location", n),
                      "with": canary("appointment.with", n)}
    add(2, "booked", "case-events", "REF-CAN-01",
        case_event(1, "appointment.booked", "REF-CAN-01", appointment=appt(31)), "decisions")
    want["decisions"] -= 1  # applied: no decision
    add(2, "stepped-up", "case-events", "REF-CAN-02",
        case_event(2, "case.stepped_up", "REF-CAN-02", reason=canary("reason", 32)), "decisions")
    add(2, "consent-given", "case-events", "REF-CAN-03",
        case_event(3, "consent.given", "REF-CAN-03"), "decisions")
    add(2, "closed", "case-events", "REF-CAN-04",
        case_event(4, "case.closed", "REF-CAN-04", outcome=canary("outcome", 34)), "decisions")
    want["decisions"] -= 1  # closed: no decision
    add(2, "triaged", "case-events", "REF-CAN-09",
        case_event(9, "case.triaged", "REF-CAN-09",
                   triage={"route": "family_hub", "destination": "hub-kendal"},
                   reason=canary("reason", 39)), "decisions")
    # rejected ones: invalid transition, bad fields, unknown case, step-9 duplicates
    add(2, "no-coordinator-on-closed", "case-events", "REF-CAN-06",
        case_event(10, "case.no_coordinator", "REF-CAN-06", reason=canary("reason", 40)), "dlq")
    add(2, "triage-destination-canary", "case-events", "REF-CAN-09",
        case_event(11, "case.triaged", "REF-CAN-09",
                   triage={"route": "family_hub",
                           "destination": canary("triage.destination", 41)}), "dlq")
    add(2, "starts-at-canary", "case-events", "REF-CAN-01",
        case_event(12, "appointment.booked", "REF-CAN-01",
                   appointment={"id": "A-2", "starts_at": canary("starts_at.text", 42)}), "dlq")
    add(2, "unknown-case", "case-events", "REF-CAN-99",
        case_event(13, "appointment.booked", "REF-CAN-99", appointment=appt(43)), "dlq")
    e = copy.deepcopy(made[1])
    e["event_id"] = "ca000000-0000-4000-8000-000000000444"
    e["referral"]["summary"] = canary("summary", 44)
    add(2, "duplicate-referral", "referrals", "REF-CAN-01", e, "dlq")
    e = copy.deepcopy(made[2])
    e["referral"]["summary"] = canary("summary", 45)
    add(2, "event-id-reused", "referrals", "REF-CAN-02", e, "dlq")

    for p, lines in phases.items():
        with open(os.path.join(d, "produce-%d.list" % p), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(d, "canaries.json"), "w") as f:
        json.dump(canaries, f, indent=0)
    print(want["decisions"], want["dlq"])


def scan(d, files):
    with open(os.path.join(d, "canaries.json")) as f:
        cans = json.load(f)
    found = 0
    for path in files:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace").lower()
        for value, field in cans.items():
            if value.lower() in text:
                print("%s: %s (%s)" % (os.path.basename(path), value, field))
                found += 1
    return 1 if found else 0


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        sys.exit(scan(sys.argv[2], sys.argv[3:]))
