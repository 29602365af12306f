#!/usr/bin/python3
"""Write the hostile event corpus: tests/hostile/events/NNN-name.json (the exact bytes of
one Kafka message each) and tests/hostile/expected.tsv (what events.md and
routing-policy.md say must happen to each).

    python3 tests/hostile/generate.py          # rewrites events/ and expected.tsv

The corpus is checked in; this script is how it was written and how to change it (edit
here, run it, commit both). tests/integration/hostile.sh runs the corpus through the
daemon against PostgreSQL and the Kafka mock cluster.

expected.tsv columns (tab-separated, one header line):
  file       events/NNN-name.json
  topic      referrals | case-events
  phase      1: produced first; 2: produced once every phase-1 event is done (case events
             on cases created in phase 1, duplicates of phase-1 events)
  outcome    dlq (dead-lettered), routed (a new case), rerouted, applied, closed (case
             events), duplicate (same event_id and body again: nothing happens)
  detail     dlq: the error code; routed/rerouted: the rule; else -
  referral   the referral id the outcome is about, or -
  why        the spec's reason, in a few words
"""
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "events")
OCCURRED = "2026-11-23T10:15:00Z"  # a Monday, in winter

cases = []
counter = [0]


def uuid(n):
    return "5ec00000-0000-4000-8000-%012x" % n


def next_uuid():
    counter[0] += 1
    return uuid(counter[0])


def dump(obj):
    """Compact JSON as UTF-8 (non-ASCII kept as it is, so the bytes are exact)."""
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": ")).encode("utf-8")


def add(name, data, outcome, detail="-", referral="-", topic="referrals", phase=1, why=""):
    if isinstance(data, (dict, list)):
        data = dump(data)
    assert isinstance(data, bytes)
    assert "\t" not in why and "\n" not in why
    n = len(cases) + 1
    fname = "%03d-%s.json" % (n, name)
    cases.append({"file": "events/" + fname, "bytes": data, "topic": topic, "phase": phase,
                  "outcome": outcome, "detail": detail, "referral": referral, "why": why})
    return fname


def referral(rid, **over):
    """A usable referral that the shipped policy routes to `school` (rule 12): a child of
    nine at Sample Kendal Primary (900301) in LA9, level 2, school needs, consent given.
    Child and family ids are unique, so rules 5 and 6 never match."""
    r = {
        "id": rid,
        "source": "school",
        "referrer": {"name": "Ms R. Referrer", "organisation": "Sample Kendal Primary School",
                     "email": "referrer@example.org", "phone": "01539 000000"},
        "child": {"id": "C-" + rid, "first_name": "Sam", "last_name": "Sample",
                  "date_of_birth": "2017-05-02", "send": False, "school_urn": "900301",
                  "postcode": "LA9 4DQ"},
        "family": {"id": "F-" + rid,
                   "contact": {"name": "Alex Sample", "mobile": "07700 900123",
                               "email": "alex@example.org", "language": "en"},
                   "consent": {"early_help": True, "sms": True, "email": True}},
        "level_of_need": 2,
        "needs": ["school_attendance", "emotional_wellbeing"],
        "safeguarding": {"immediate_risk": False},
        "summary": "free text from the referrer",
    }
    for path, value in over.items():
        parts = path.split("__")
        obj = r
        for p in parts[:-1]:
            obj = obj[p]
        if value is DELETE:
            del obj[parts[-1]]
        else:
            obj[parts[-1]] = value
    return r


DELETE = object()


def envelope(typ, event_id=None, **extra):
    e = {"schema_version": 1, "event_id": event_id or next_uuid(), "type": typ,
         "occurred_at": OCCURRED}
    e.update(extra)
    return e


def ref_event(rid, env=None, **over):
    e = envelope("referral.received", referral=referral(rid, **over))
    for k, v in (env or {}).items():
        if v is DELETE:
            del e[k]
        else:
            e[k] = v
    return e


def case_event(typ, rid, env=None, **extra):
    e = envelope(typ, case={"referral_id": rid}, **extra)
    for k, v in (env or {}).items():
        if v is DELETE:
            del e[k]
        else:
            e[k] = v
    return e


def rid(n):
    return "REF-H-%03d" % n


def nrid():
    return rid(len(cases) + 1)


def routed(name, rule, env=None, why="", **over):
    r = nrid()
    add(name, ref_event(r, env, **over), "routed", rule, r, why=why)


def dlq(name, data, code, topic="referrals", why="", phase=1):
    add(name, data, "dlq", code, "-", topic=topic, phase=phase, why=why)


def base_bytes(r=None):
    return dump(ref_event(r or nrid()))


# ------------------------------------------------------------------ not usable: too_large
# check 1 comes first: nothing else is looked at
LIMIT = 65536

def sized_referral(r, size):
    """A valid referral of exactly `size` bytes (the summary pads it)."""
    e = ref_event(r, summary="")
    raw = dump(e)
    e = ref_event(r, summary="s" * (size - len(raw)))
    e["event_id"] = json.loads(raw)["event_id"]
    raw = dump(e)
    assert len(raw) == size, (len(raw), size)
    return raw


dlq("too-large-valid-referral", sized_referral(nrid(), LIMIT + 1), "too_large",
    why="65537 bytes: over the 64 KiB default")
dlq("too-large-brackets", b"[" * 100000, "too_large", why="100000 [ : size before JSON")
dlq("too-large-binary", bytes(range(256)) * 300, "too_large", why="binary, over the limit")
dlq("too-large-invalid-utf8", b'{"schema_version": 1, "x": "' + b"\xff" * 70000 + b'"}',
    "too_large", why="size is checked before UTF-8")
dlq("too-large-case-event",
    dump(case_event("case.closed", "REF-H-X", outcome="o" * 70000)), "too_large",
    topic="case-events", why="the limit holds on both topics")

# ------------------------------------------------------------------ invalid_json
IJ = "invalid_json"
dlq("empty", b"", IJ, why="empty message")
dlq("whitespace", b"  \n\t \r\n", IJ, why="white space only")
dlq("json-null", b"null", IJ, why="not an object")
dlq("json-true", b"true", IJ, why="not an object")
dlq("json-number", b"42", IJ, why="not an object")
dlq("json-string", b'"referral.received"', IJ, why="not an object")
dlq("json-empty-array", b"[]", IJ, why="not an object")
dlq("array-of-valid-event", b"[" + base_bytes() + b"]", IJ, why="an event inside an array")
b = base_bytes()
for i, frac in enumerate((1, 2, 3, 5, 8, 13, 21, 34, 55, 89)):
    cut = len(b) * frac // 100
    dlq("truncated-%02d" % frac, b[:max(cut, 1)], IJ, why="cut at %d%% of its bytes" % frac)
dlq("truncated-last-brace", b[:-1], IJ, why="missing the final }")
dlq("trailing-garbage", base_bytes() + b" x", IJ, why="text after the object")
dlq("two-objects", base_bytes() + base_bytes(), IJ, why="two objects in one message")
dlq("single-quotes", base_bytes().replace(b'"', b"'"), IJ, why="single quotes are not JSON")
dlq("trailing-comma", base_bytes()[:-1] + b", }", IJ, why="trailing comma")
dlq("comment", b"/* hello */ " + base_bytes(), IJ, why="comments are not JSON")
dlq("nan", base_bytes().replace(b'"level_of_need": 2', b'"level_of_need": NaN'), IJ,
    why="NaN is not JSON")
dlq("infinity", base_bytes().replace(b'"level_of_need": 2', b'"level_of_need": Infinity'), IJ,
    why="Infinity is not JSON")
dlq("hex-number", base_bytes().replace(b'"schema_version": 1', b'"schema_version": 0x1'), IJ,
    why="hex numbers are not JSON")
dlq("leading-zero", base_bytes().replace(b'"schema_version": 1', b'"schema_version": 01'), IJ,
    why="leading zeros are not JSON")
dlq("unquoted-key", base_bytes().replace(b'"schema_version"', b"schema_version"), IJ,
    why="keys must be strings")
dlq("raw-nul-in-string", base_bytes().replace(b"free text", b"free\x00text"), IJ,
    why="a raw NUL byte")
dlq("raw-nul-after-object", base_bytes() + b"\x00", IJ, why="a NUL byte after the object")
dlq("raw-nul-first", b"\x00" + base_bytes(), IJ, why="a NUL byte first")
dlq("raw-control-in-string", base_bytes().replace(b"free text", b"free\x01text"), IJ,
    why="an unescaped control character")
dlq("raw-newline-in-string", base_bytes().replace(b"free text", b"free\ntext"), IJ,
    why="an unescaped line feed inside a string")
dlq("invalid-utf8-ff", base_bytes().replace(b"free text", b"free \xff text"), IJ,
    why="byte 0xFF is never UTF-8")
dlq("invalid-utf8-continuation", base_bytes().replace(b'"Sam"', b'"S\x80am"'), IJ,
    why="a lone continuation byte in a name")
dlq("invalid-utf8-overlong", base_bytes().replace(b"free text", b"free \xc0\xaf text"), IJ,
    why="an overlong encoding of /")
dlq("invalid-utf8-surrogate", base_bytes().replace(b"free text", b"free \xed\xa0\x80 text"), IJ,
    why="a UTF-16 surrogate encoded in UTF-8")
dlq("invalid-utf8-cut-sequence", base_bytes().replace(b"free text", b"free \xe2\x82"), IJ,
    why="a multi-byte sequence cut short")
dlq("invalid-utf8-in-key", base_bytes().replace(b'"summary"', b'"summ\xfery"'), IJ,
    why="invalid UTF-8 in a key")
dlq("latin1-name", base_bytes().replace(b'"Sam"', b'"Zo\xeb"'), IJ, why="Latin-1, not UTF-8")
dlq("utf16le", base_bytes().decode().encode("utf-16-le"), IJ, why="UTF-16 is not UTF-8 JSON")
dlq("utf8-bom", b"\xef\xbb\xbf" + base_bytes(), IJ, why="RFC 8259: JSON text has no BOM")
dlq("escaped-lone-surrogate", base_bytes().replace(b"free text", b"free \\ud800 text"), IJ,
    why="\\ud800 alone is no Unicode character")
dlq("escaped-reversed-surrogates", base_bytes().replace(b"free text", b"\\udc00\\ud800"), IJ,
    why="low surrogate before high")
dlq("bad-escape", base_bytes().replace(b"free text", b"free \\x41 text"), IJ,
    why="\\x is not a JSON escape")
deep = b"[" * 3000 + b"]" * 3000
dlq("nested-arrays-3000", base_bytes()[:-1] + b', "deep": ' + deep + b"}", IJ,
    why="nesting deeper than the parser allows")
deep = b'{"a": ' * 5000 + b"1" + b"}" * 5000
dlq("nested-objects-5000", deep, IJ, why="nesting deeper than the parser allows")
dlq("unterminated-brackets", b"[" * 30000, IJ, why="30000 open brackets")
dlq("number-overflow-level",
    base_bytes().replace(b'"level_of_need": 2', b'"level_of_need": 1e400'), IJ,
    why="a number no double holds")
dlq("number-overflow-extra", base_bytes()[:-1] + b', "n": 99999999999999999999}', IJ,
    why="an integer over 64 bits")
dlq("number-overflow-negative", base_bytes()[:-1] + b', "n": -1e999}', IJ,
    why="a number no double holds")
dlq("key-with-nul", dump(ref_event(nrid(), extra={"a\u0000b": 1})), IJ,
    why="a key holding \\u0000: the JSON library cannot hold it; a clear error, triage alerted")
dlq("case-event-raw-nul", dump(case_event("consent.given", "REF-H-X"))[:-1] + b"\x00}", IJ,
    topic="case-events", why="a raw NUL byte on the case-events topic")

# ------------------------------------------------------------------ unsupported_schema_version
USV = "unsupported_schema_version"
dlq("empty-object", b"{}", USV, why="schema_version missing")
dlq("schema-missing", ref_event(nrid(), env={"schema_version": DELETE}), USV, why="missing")
dlq("schema-null", ref_event(nrid(), env={"schema_version": None}), USV, why="null is missing")
for name, v in (("2", 2), ("0", 0), ("minus-1", -1), ("string", "1"), ("1.5", 1.5),
                ("true", True), ("array", [1]), ("object", {"v": 1}), ("10", 10),
                ("int64-max", 9223372036854775807), ("int64-min", -9223372036854775808)):
    dlq("schema-" + name, ref_event(nrid(), env={"schema_version": v}), USV,
        why="schema_version %s is not 1" % json.dumps(v))
dlq("schema-before-event-id",
    ref_event(nrid(), env={"schema_version": 2, "event_id": "nope"}), USV,
    why="check 3 before check 4")

# ------------------------------------------------------------------ invalid_event_id
IEI = "invalid_event_id"
for name, v in (("missing", DELETE), ("null", None), ("number", 12345), ("empty", ""),
                ("short", "5ec00000-0000-4000-8000"),
                ("no-dashes", "5ec000000000400080000000000000ff"),
                ("dashes-moved", "5ec0000-00000-4000-8000-0000000000ff"),
                ("non-hex", "5ec00000-0000-4000-8000-0000000000fg"),
                ("braces", "{5ec00000-0000-4000-8000-0000000000ff}"),
                ("urn", "urn:uuid:5ec00000-0000-4000-8000-0000000000ff"),
                ("trailing-newline", "5ec00000-0000-4000-8000-0000000000ff\n"),
                ("embedded-nul", "5ec00000-0000-4000-8000-0000000000f\u0000"),
                ("sql", "'; DROP TABLE processed_events; --"),
                ("array", ["5ec00000-0000-4000-8000-0000000000ff"])):
    dlq("event-id-" + name, ref_event(nrid(), env={"event_id": v}), IEI,
        why="event_id %s" % name.replace("-", " "))
dlq("event-id-before-type", ref_event(nrid(), env={"event_id": "x", "type": "nope"}), IEI,
    why="check 4 before check 5")
dlq("case-event-id-invalid", case_event("consent.given", "REF-H-X", env={"event_id": "1"}), IEI,
    topic="case-events", why="event_id not a UUID on the case-events topic")

# ------------------------------------------------------------------ unknown_type
UT = "unknown_type"
for name, v in (("missing", DELETE), ("null", None), ("number", 1),
                ("upper-case", "REFERRAL.RECEIVED"), ("trailing-space", "referral.received "),
                ("embedded-nul", "referral.received\u0000"), ("crlf", "referral.received\r\n"),
                ("unknown", "referral.deleted"),
                ("sql", "referral.received'; DROP TABLE cases; --")):
    dlq("type-" + name, ref_event(nrid(), env={"type": v}), UT, why="type %s" % name)
for t in ("consent.given", "case.triaged", "case.stepped_up", "case.stepped_down",
          "case.no_coordinator", "appointment.booked", "appointment.cancelled", "case.closed"):
    dlq("wrong-topic-" + t.replace(".", "-"),
        case_event(t, "REF-H-X", triage={"route": "school", "destination": "school-900301"},
                   appointment={"id": "A-1", "starts_at": "2026-12-01T10:30:00Z"}),
        UT, why="%s is not a referrals-topic type" % t)
dlq("wrong-topic-referral-on-case-events", ref_event(nrid()), UT, topic="case-events",
    why="referral.received is not a case-events type")
dlq("case-events-unknown-type", case_event("case.deleted", "REF-H-X"), UT, topic="case-events",
    why="unknown type")
dlq("type-before-occurred-at", ref_event(nrid(), env={"type": 7, "occurred_at": DELETE}), UT,
    why="check 5 before check 6")

# ------------------------------------------------------------------ occurred_at
dlq("occurred-at-missing", ref_event(nrid(), env={"occurred_at": DELETE}), "missing_field",
    why="occurred_at missing")
dlq("occurred-at-null", ref_event(nrid(), env={"occurred_at": None}), "missing_field",
    why="null is missing")
for name, v in (("number", 1700000000), ("date-only", "2026-11-23"),
                ("no-offset", "2026-11-23T10:15:00"), ("month-13", "2026-13-01T10:15:00Z"),
                ("feb-30", "2026-02-30T10:15:00Z"), ("hour-25", "2026-11-23T25:00:00Z"),
                ("offset-24", "2026-11-23T10:15:00+24:00"), ("words", "yesterday"),
                ("crlf", "2026-11-23T10:15:00Z\r\n"),
                ("sql", "2026-11-23T10:15:00Z'; DROP TABLE cases; --"),
                ("array", ["2026-11-23T10:15:00Z"])):
    dlq("occurred-at-" + name, ref_event(nrid(), env={"occurred_at": v}), "invalid_field",
        why="occurred_at %s" % name)
dlq("occurred-at-before-referral", ref_event(nrid(), env={"occurred_at": "x",
                                                           "referral": None}),
    "invalid_field", why="check 6 before check 7")

# ------------------------------------------------------------------ referral.id
MF, IF = "missing_field", "invalid_field"
dlq("referral-missing", envelope("referral.received"), MF, why="no referral object")
dlq("referral-null", envelope("referral.received", referral=None), MF, why="null is missing")
dlq("referral-string", envelope("referral.received", referral="REF-1"), MF,
    why="referral not an object: no referral.id")
dlq("referral-id-missing", ref_event(nrid(), id=DELETE), MF, why="referral.id missing")
dlq("referral-id-null", ref_event(nrid(), id=None), MF, why="null is missing")
for name, v in (("number", 123), ("empty", ""), ("65-chars", "R" * 65), ("space", "REF 1"),
                ("log-injection", "REF-1\r\nlevel=error msg=forged"),
                ("sql", "REF'; DROP TABLE cases; --"), ("non-ascii", "R\u00c9F-1"),
                ("embedded-nul", "REF\u0000X"), ("array", ["REF-1"]),
                ("placeholder", "((referral_id))")):
    dlq("referral-id-" + name, ref_event(nrid(), id=v), IF, why="referral.id %s" % name)

# ------------------------------------------------------------------ case events, checks 7-8
CE = "case-events"
for name, ev, code in (
        ("case-missing", case_event("consent.given", "X", env={"case": DELETE}), MF),
        ("case-null", case_event("consent.given", "X", env={"case": None}), MF),
        ("case-referral-id-missing", case_event("consent.given", "X", env={"case": {}}), MF),
        ("case-referral-id-number", case_event("consent.given", "X",
                                               env={"case": {"referral_id": 42}}), IF),
        ("case-referral-id-sql", case_event("consent.given", "REF 1; DROP TABLE cases"), IF),
        ("case-referral-id-crlf", case_event("consent.given", "REF-1\r\n"), IF),
        ("triage-missing", case_event("case.triaged", "REF-H-X"), IF),
        ("triage-route-unknown", case_event("case.triaged", "REF-H-X",
                                            triage={"route": "nowhere",
                                                    "destination": "hub-kendal"}), IF),
        ("triage-route-manual", case_event("case.triaged", "REF-H-X",
                                           triage={"route": "manual_triage",
                                                   "destination": "front-door-triage"}), IF),
        ("triage-destination-unknown", case_event("case.triaged", "REF-H-X",
                                                  triage={"route": "family_hub",
                                                          "destination": "no-such-team"}), IF),
        ("triage-destination-crlf", case_event("case.triaged", "REF-H-X",
                                               triage={"route": "family_hub",
                                                       "destination": "hub-kendal\r\n"}), IF),
        ("triage-destination-sql", case_event("case.triaged", "REF-H-X",
                                              triage={"route": "school",
                                                      "destination": "school-900301' OR 1=1"}),
         IF),
        ("triage-destination-number", case_event("case.triaged", "REF-H-X",
                                                 triage={"route": "school", "destination": 42}),
         IF),
        ("appointment-missing", case_event("appointment.booked", "REF-H-X"), IF),
        ("appointment-string", case_event("appointment.booked", "REF-H-X", appointment="A-1"),
         IF),
        ("appointment-id-empty", case_event("appointment.booked", "REF-H-X",
                                            appointment={"id": "",
                                                         "starts_at": "2026-12-01T10:30:00Z"}),
         IF),
        ("appointment-id-number", case_event("appointment.booked", "REF-H-X",
                                             appointment={"id": 7,
                                                          "starts_at": "2026-12-01T10:30:00Z"}),
         IF),
        ("appointment-starts-at-missing", case_event("appointment.booked", "REF-H-X",
                                                     appointment={"id": "A-1"}), IF),
        ("appointment-starts-at-words", case_event("appointment.booked", "REF-H-X",
                                                   appointment={"id": "A-1",
                                                                "starts_at": "tomorrow 10am"}),
         IF),
        ("appointment-location-number",
         case_event("appointment.booked", "REF-H-X",
                    appointment={"id": "A-1", "starts_at": "2026-12-01T10:30:00Z",
                                 "location": 42}), IF),
        ("appointment-with-array",
         case_event("appointment.booked", "REF-H-X",
                    appointment={"id": "A-1", "starts_at": "2026-12-01T10:30:00Z",
                                 "with": ["x"]}), IF),
        ("cancelled-id-null", case_event("appointment.cancelled", "REF-H-X",
                                         appointment={"id": None}), IF),
        ("reason-number", case_event("case.stepped_up", "REF-H-X", reason=42), IF),
        ("outcome-object", case_event("case.closed", "REF-H-X", outcome={}), IF)):
    dlq(name, ev, code, topic=CE, why="case-event field check")

# ------------------------------------------------------------------ usable: routed verbatim
S = "school"
routed("control", S, why="the unmodified base referral")
r = nrid()
ev = ref_event(r)
ev["event_id"] = ev["event_id"].upper()
add("event-id-upper-case", ev, "routed", S, r, why="a UUID in either case")
routed("schema-version-1.0", S, env={"schema_version": 1.0}, why="1.0 is the whole number 1")
routed("nulls-for-optional-fields", S, source=None, referrer=None, summary=None,
       why="null counts as missing; optional fields")
r = "R" * 64
add("referral-id-64-chars", ref_event(r), "routed", S, r, why="64 characters is the limit")
r = "../../etc/passwd"
add("referral-id-path", ref_event(r), "routed", S, r, why="/ and . are in the id pattern")
routed("name-crlf-header", S, child__first_name="Sam\r\nBcc: victim@example.net",
       why="CR/LF in a name is text")
routed("contact-email-crlf", S,
       family__contact__email="alex@example.org\r\nBcc: victim@example.net\r\n\r\nbody",
       why="CR/LF in an email is text")
routed("referrer-email-crlf", S, referrer__email="ref@example.org\nSubject: forged",
       why="LF in an email is text")
routed("mobile-crlf", S, family__contact__mobile="07700 900123\r\nX-Injected: 1",
       why="CR/LF in a mobile is text")
routed("summary-placeholders", S,
       summary="((referral_id)) ((child_first_name)) ((family_name)) (( )) ((x",
       why="((placeholders)) in free text are text")
routed("name-placeholder", S, child__first_name="((child_first_name))",
       family__contact__name="((referral_id))", why="a name that looks like a placeholder")
routed("summary-sql", S, summary="'); DROP TABLE cases; -- \\' OR 1=1; $1 $$ ;",
       why="SQL metacharacters are text")
routed("child-id-sql", S, child__id="C'); DROP TABLE cases; --",
       why="child.id is any non-empty string")
routed("family-id-quotes", S, family__id="F\\'\"`$(id)`%s%n",
       why="family.id is any string")
routed("names-unicode", S, child__first_name="\u202eSam\u200d\U0001F600",
       child__last_name="\u2028Sample\u2029", family__contact__name="\u0410\u043b\u0435\u043a\u0441",
       why="bidi overrides, line separators, emoji")
routed("summary-control-escapes", S, summary="\u0001\u001b[31mred\u001b[0m\u007f\u0085",
       why="escaped control characters")
routed("summary-escaped-nul", S, summary="before\u0000after", why="\\u0000 is valid JSON text")
routed("summary-log-injection", S,
       summary="x\nlevel=error msg=\"referral routed\" referral=REF-EX-001\n",
       why="a forged log line in free text")
routed("summary-html", S, summary="<script>alert(1)</script><img src=x onerror=alert(1)>",
       why="markup is text")
r = nrid()
ev = ref_event(r)
big = ev["referral"]["summary"] = "z" * 60000
add("summary-60k", ev, "routed", S, r, why="a 60 KB string under the 64 KiB limit")
r = nrid()
add("exactly-64KiB", sized_referral(r, LIMIT), "routed", S, r,
    why="65536 bytes is at the limit, not over it")
routed("summary-object", S, summary={"not": ["a", "string"]},
       why="summary is not read by routing")
routed("referrer-array", S, referrer=["a", 1, None], why="referrer is not read by routing")
r = nrid()
ev = ref_event(r)
ev["__proto__"] = {"polluted": True}
ev["constructor"] = {"prototype": 1}
ev["referral"]["extra"] = {"": "", "\u00e9\U0001F600": "\u0000"}
add("unknown-fields", ev, "routed", S, r, why="unknown fields are ignored")
r = nrid()
add("nested-1000-extra",
    dump(ref_event(r))[:-1] + b', "deep": ' + b"[" * 1000 + b"]" * 1000 + b"}",
    "routed", S, r, why="deep nesting in an ignored field")
routed("huge-array-extra", S, extra=[0] * 15000, why="a 15000-element ignored array")
routed("needs-2500-duplicates", S, needs=["school_attendance"] * 2500,
       why="2500 copies of one need: one distinct need")
routed("postcode-sql", S, child__postcode="LA9 4DQ'; DROP TABLE cases; --",
       why="no district; the school still places it")
routed("postcode-crlf-whitespace", "family_hub", child__postcode="la9\r\n4dq",
       needs=["parenting"], why="white space (CR/LF) removed: LA9 has hub-kendal")
routed("postcode-nbsp", "family_hub", child__postcode="LA9\u00a04DQ", needs=["parenting"],
       why="NBSP is white space: LA9 has hub-kendal")
routed("school-urn-sql", "family_hub", child__school_urn="900301' OR '1'='1",
       why="an unknown URN: the LA9 family hub")
routed("school-urn-number", "family_hub", child__school_urn=900301,
       why="a URN must be a string: the LA9 family hub")
routed("family-id-nul", S, family__id="F\u0000x",
       why="a family id the database cannot hold: no family history, routed as usual")

# ------------------------------------------------------------------ rule 2: incomplete
INC = "incomplete"
for name, over in (
        ("level-string", {"level_of_need": "2"}), ("level-true", {"level_of_need": True}),
        ("level-2.5", {"level_of_need": 2.5}), ("level-0", {"level_of_need": 0}),
        ("level-5", {"level_of_need": 5}), ("level-minus-2", {"level_of_need": -2}),
        ("level-1e308", {"level_of_need": 1e308}),
        ("level-int64-max", {"level_of_need": 9223372036854775807}),
        ("level-int64-min", {"level_of_need": -9223372036854775808}),
        ("level-array", {"level_of_need": []}), ("level-null", {"level_of_need": None}),
        ("needs-missing", {"needs": DELETE}), ("needs-string", {"needs": "school_attendance"}),
        ("needs-empty", {"needs": []}), ("needs-non-strings", {"needs": [1, None, {}]}),
        ("needs-code-crlf", {"needs": ["school_attendance", "x\r\nlevel=error"]}),
        ("needs-code-placeholder", {"needs": ["((child_first_name))"]}),
        ("needs-code-sql", {"needs": ["'; DROP TABLE cases; --"]}),
        ("needs-3000-unknown", {"needs": ["n%d" % i for i in range(3000)]}),
        ("child-id-missing", {"child__id": DELETE}), ("child-id-empty", {"child__id": ""}),
        ("child-id-number", {"child__id": 123}), ("child-id-object", {"child__id": {"x": 1}}),
        ("child-id-nul", {"child__id": "C-1\u0000x"}),
        ("dob-short", {"child__date_of_birth": "2017-5-2"}),
        ("dob-uk-format", {"child__date_of_birth": "02/05/2017"}),
        ("dob-feb-30", {"child__date_of_birth": "2017-02-30"}),
        ("dob-datetime", {"child__date_of_birth": "2017-05-02T00:00:00Z"}),
        ("dob-number", {"child__date_of_birth": 20170502}),
        ("dob-future", {"child__date_of_birth": "2030-01-01"}),
        ("dob-nul", {"child__date_of_birth": "2017-05-02\u0000"}),
        ("dob-sql", {"child__date_of_birth": "2017-05-02'; DROP TABLE cases; --"}),
        ("no-dates", {"child__date_of_birth": DELETE}),
        ("child-string", {"child": "Sam Sample, 2017-05-02"}),
        ("edd-invalid", {"child__date_of_birth": DELETE, "child__expected_due_date": "soon"})):
    why = "child.id with a NUL byte is not a usable id" if name == "child-id-nul" else \
        "rule 2: " + name.replace("-", " ")
    routed(name, INC, why=why, **over)
r = nrid()
add("referral-only-id", envelope("referral.received", referral={"id": r}), "routed", INC, r,
    why="every routing field missing")

# ------------------------------------------------------------------ other rules
routed("safeguarding-with-garbage", "safeguarding", safeguarding={"immediate_risk": True},
       level_of_need="x", needs=5, child="?",
       why="rule 1 looks at nothing else")
routed("level-4.0", "safeguarding", level_of_need=4.0, why="4.0 is level 4")
routed("risk-string-true", S, safeguarding={"immediate_risk": "true"},
       why="\"true\" is not true")
routed("risk-number", S, safeguarding={"immediate_risk": 1}, why="1 is not true")
routed("safeguarding-string", S, safeguarding="true", why="not an object")
routed("consent-string-true", "no_consent", family__consent={"early_help": "true"},
       why="\"true\" is not true")
routed("consent-number", "no_consent", family__consent={"early_help": 1}, why="1 is not true")
routed("consent-null", "no_consent", family__consent=None, why="null is missing")
routed("send-string-true", "age_out_of_range", child__date_of_birth="2006-01-01",
       child__send="true", why="age 20 and send not true")
routed("dob-1900", "age_out_of_range", child__date_of_birth="1900-01-01", why="age 126")

# ------------------------------------------------------------------ phase 2: against the database
# cases in a known state for the case events below, one per event so order cannot matter
targets = {}


def target(kind):
    r = nrid()
    if kind == "allocated":
        add("target-allocated", ref_event(r), "routed", S, r, why="a school case (allocated)")
    elif kind == "triage":
        add("target-triage", ref_event(r, level_of_need=DELETE), "routed", INC, r,
            why="a case in triage")
    elif kind == "awaiting_consent":
        add("target-awaiting-consent", ref_event(r, family__consent={"early_help": False}),
            "routed", "no_consent", r, why="a case awaiting consent")
    elif kind == "closed":
        add("target-closed", ref_event(r, level_of_need=1), "routed", "universal", r,
            why="a signposted case (closed)")
    return r


def on_case(name, kind, typ, want, detail="-", why="", **extra):
    r = target(kind)
    add(name, case_event(typ, r, **extra), want, detail, r, topic=CE, phase=2, why=why)


HOSTILE = "Hub\r\nBcc: victim@example.net ((child_first_name)) '); DROP TABLE notifications; --"
on_case("booked-hostile-location", "allocated", "appointment.booked", "applied",
        appointment={"id": "A-1'; DROP TABLE cases; --", "starts_at": "2026-12-01T10:30:00Z",
                     "location": HOSTILE, "with": "((family_name))\n"},
        why="free text in an appointment is text")
on_case("booked-huge-location", "allocated", "appointment.booked", "applied",
        appointment={"id": "A-2", "starts_at": "2026-12-01T10:30:00Z", "location": "L" * 50000},
        why="a 50 KB location")
on_case("booked-nul-location", "allocated", "appointment.booked", "applied",
        appointment={"id": "A-3", "starts_at": "2026-12-01T10:30:00+01:00",
                     "location": "Hub\u0000Street"}, why="\\u0000 in a location")
on_case("cancelled", "allocated", "appointment.cancelled", "applied",
        appointment={"id": "A-9\r\n"}, why="any non-empty appointment id")
on_case("stepped-up-hostile-reason", "allocated", "case.stepped_up", "rerouted", "stepped_up",
        reason="((referral_id))\r\nlevel=error '; DROP TABLE cases; --",
        why="school -> targeted_family_help")
on_case("no-coordinator-sql-reason", "allocated", "case.no_coordinator", "rerouted",
        "no_coordinator", reason="' OR 1=1; --", why="-> family_help_panel")
on_case("closed-hostile-outcome", "allocated", "case.closed", "closed",
        outcome="o\u0000" + "((x))" * 5000, why="any state but closed")
on_case("triaged", "triage", "case.triaged", "rerouted", "triaged",
        triage={"route": "family_hub", "destination": "hub-kendal"},
        why="a staff decision on a case in triage")
on_case("consent-given", "awaiting_consent", "consent.given", "rerouted", "school",
        why="the rules again with consent: school")
on_case("closed-from-triage", "triage", "case.closed", "closed", why="any state but closed")
on_case("consent-on-allocated", "allocated", "consent.given", "dlq", "invalid_transition",
        why="consent.given only in awaiting_consent")
on_case("triaged-on-allocated", "allocated", "case.triaged", "dlq", "invalid_transition",
        triage={"route": "family_hub", "destination": "hub-kendal"},
        why="case.triaged only in triage")
on_case("stepped-up-in-triage", "triage", "case.stepped_up", "dlq", "invalid_transition",
        why="case.stepped_up only in allocated")
on_case("closed-twice", "closed", "case.closed", "dlq", "invalid_transition",
        why="case.closed in closed")
on_case("booked-awaiting-consent", "awaiting_consent", "appointment.booked", "dlq",
        "invalid_transition",
        appointment={"id": "A-1", "starts_at": "2026-12-01T10:30:00Z"},
        why="appointments only in allocated")
for i, (typ, extra) in enumerate((
        ("consent.given", {}),
        ("appointment.booked", {"appointment": {"id": "A-1", "starts_at": "2026-12-01T10:30:00Z",
                                                "location": HOSTILE}}))):
    r = "REF-H-NO-CASE-%d" % (i + 1)
    add("unknown-case-%d" % (i + 1), case_event(typ, r, **extra), "dlq", "unknown_case", r,
        topic=CE, phase=2, why="no case ever has this referral id")

# duplicates of phase-1 referrals (the first `control` referral and its bytes)
control = next(c for c in cases if c["file"].endswith("-control.json"))
ctl = json.loads(control["bytes"])
add("resend-same-bytes", control["bytes"], "duplicate", "-", control["referral"], phase=2,
    why="same event_id and body: a plain duplicate")
e = json.loads(control["bytes"])
e["referral"]["summary"] = "changed"
add("event-id-reused", dump(e), "dlq", "event_id_reused", control["referral"], phase=2,
    why="same event_id, another body")
e = json.loads(control["bytes"])
e["event_id"] = e["event_id"].upper()
add("event-id-reused-upper-case", dump(e), "dlq", "event_id_reused", control["referral"],
    phase=2, why="the same UUID in upper case, so another body")
e = json.loads(control["bytes"])
e["event_id"] = next_uuid()
add("duplicate-referral", dump(e), "dlq", "duplicate_referral", control["referral"], phase=2,
    why="a new event for a referral id that has a case")

# ------------------------------------------------------------------ write
if os.path.isdir(OUT):
    shutil.rmtree(OUT)
os.makedirs(OUT)
for c in cases:
    with open(os.path.join(HERE, c["file"]), "wb") as f:
        f.write(c["bytes"])
with open(os.path.join(HERE, "expected.tsv"), "w") as f:
    f.write("file\ttopic\tphase\toutcome\tdetail\treferral\twhy\n")
    for c in cases:
        f.write("\t".join([c["file"], c["topic"], str(c["phase"]), c["outcome"], c["detail"],
                           c["referral"], c["why"]]) + "\n")
print("%d events written" % len(cases))
