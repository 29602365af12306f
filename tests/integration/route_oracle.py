#!/usr/bin/python3
"""Differential test of the routing engine against a second, independent reading of the
policy (routing-policy.md), written here in Python from the text alone.

    route_oracle.py FRONTDOORD CONFIG DIRECTORY_JSON [COUNT [SEED]]

Generates COUNT referrals (default 20000) that vary every field the rules read, with
the awkward values in mind (birthdays on the day, 29 February, local dates that differ
from the UTC date, summer time changes, weekends, bank holidays, numbers that are
almost levels, postcodes in odd spacing and case, unknown and duplicated need codes,
nulls and wrong types), runs `frontdoord --explain` on them, and compares route,
destination, priority, rule and decision_due_at line by line. Prints the first
disagreements and exits 1 when there is any.
"""
import datetime as dt
import json
import random
import re
import subprocess
import sys
from zoneinfo import ZoneInfo

SCHOOL = ["school_attendance", "behaviour", "bullying", "emotional_wellbeing", "learning",
          "send_support", "young_carer", "online_safety"]
FAMILY = ["parenting", "housing", "financial", "employment", "early_years", "family_health",
          "parental_conflict"]
COMPLEX = ["domestic_abuse", "parental_substance_misuse", "parental_mental_health",
           "exploitation_risk", "missing_episodes", "youth_offending"]
YOUTH = ["neet", "youth_activities", "substance_use", "anti_social_behaviour"]
VOCAB = set(SCHOOL + FAMILY + COMPLEX + YOUTH)
ROUTE_PRIORITY = {"school": "green", "family_hub": "green", "youth_support": "green",
                  "targeted_family_help": "amber", "family_help_panel": "amber",
                  "social_care": "red"}

MISSING = object()  # a field left out


# ------------------------------------------------------------------ the policy, again
class Policy:
    def __init__(self, directory):
        self.d = directory
        cal = directory["calendar"]
        self.zone = ZoneInfo(cal["timezone"])
        names = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        self.working = {names.index(x) for x in cal["working_days"]}
        self.holidays = {dt.date.fromisoformat(x) for x in cal["bank_holidays"]}
        self.locality_of_district = {}
        for loc in directory["localities"]:
            for dd in loc["postcode_districts"]:
                self.locality_of_district[dd] = loc
        self.localities = {loc["id"]: loc for loc in directory["localities"]}
        self.hub_of_district = {}
        for t in directory["teams"]:
            if t["kind"] == "family_hub":
                for dd in t["postcode_districts"]:
                    self.hub_of_district[dd] = t
        self.schools = {s["urn"]: s for s in directory["schools"]}

    def working_day_after(self, d, n):
        while n > 0:
            d += dt.timedelta(days=1)
            if d.weekday() in self.working and d not in self.holidays:
                n -= 1
        return d

    def due(self, priority, occurred, received):
        if priority == "red":
            t = occurred + dt.timedelta(hours=4)
        elif priority in ("amber", "green"):
            day = self.working_day_after(received, 1 if priority == "amber" else 3)
            t = dt.datetime(day.year, day.month, day.day, 17, 0, tzinfo=self.zone)
        else:
            return None
        return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def present(obj, key):
    """The member, or MISSING when absent or null (a JSON null counts as missing)."""
    if not isinstance(obj, dict) or key not in obj or obj[key] is None:
        return MISSING
    return obj[key]


def parse_date(v):
    if not isinstance(v, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", v):
        return None
    try:
        return dt.date.fromisoformat(v)
    except ValueError:
        return None


def as_level(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if v != int(v) or not 1 <= v <= 4:
        return None
    return int(v)


def district_of(pc):
    if not isinstance(pc, str):
        return None
    s = re.sub(r"[ \t\n\r\f\v]", "", pc).upper()
    m = re.fullmatch(r"([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})", s)
    return m.group(1) if m else None


def decide(p, ev):
    """(route, destination, priority, rule, decision_due_at) for one referral event."""
    occurred = dt.datetime.fromisoformat(ev["occurred_at"].replace("Z", "+00:00").replace("z", "+00:00"))
    occurred = occurred.replace(microsecond=0)
    received = occurred.astimezone(p.zone).date()
    ref = ev["referral"]
    child = present(ref, "child")
    family = present(ref, "family")
    sg = present(ref, "safeguarding")
    risk = present(sg, "immediate_risk") is True
    lv_raw = present(ref, "level_of_need")
    level = None if lv_raw is MISSING else as_level(lv_raw)

    def out(route, dest, prio, rule):
        return (route, dest, prio, rule, p.due(prio, occurred, received))

    if risk or level == 4:
        return out("social_care", "social-care-duty", "red", "safeguarding")

    problems = []
    if level is None:
        problems.append("level")
    needs = present(ref, "needs")
    if (needs is MISSING or not isinstance(needs, list) or not needs
            or any(not isinstance(n, str) for n in needs)
            or any(n not in VOCAB for n in needs)):
        problems.append("needs")
    cid = present(child, "id")
    if not isinstance(cid, str) or cid == "":
        problems.append("child.id")
    dob_raw = present(child, "date_of_birth")
    edd_raw = present(child, "expected_due_date")
    if dob_raw is MISSING and edd_raw is MISSING:
        problems.append("no date")
    dob = edd = None
    if dob_raw is not MISSING:
        dob = parse_date(dob_raw)
        if dob is None:
            problems.append("dob")
        elif dob > received:
            problems.append("dob after")
    if edd_raw is not MISSING:
        edd = parse_date(edd_raw)
        if edd is None:
            problems.append("edd")
    if problems:
        return out("manual_triage", "front-door-triage", "amber", "incomplete")

    pre_birth = dob_raw is MISSING and edd_raw is not MISSING
    age = None
    if not pre_birth:
        age = received.year - dob.year - ((received.month, received.day) < (dob.month, dob.day))
    send = present(child, "send") is True
    if not pre_birth and (age >= 25 or (age >= 19 and not send)):
        return out("signpost", "adult-services", "blue", "age_out_of_range")
    consent = present(present(family, "consent"), "early_help") is True
    if level in (2, 3) and not consent:
        return out("consent_required", "referrer", "green", "no_consent")
    if level == 1:
        return out("signpost", "universal-services", "blue", "universal")

    district = district_of(present(child, "postcode"))
    urn = present(child, "school_urn")
    school = p.schools.get(urn) if isinstance(urn, str) else None
    locality = p.locality_of_district.get(district)
    if locality is None and school is not None:
        locality = p.localities.get(school["locality"])
    hub = p.hub_of_district.get(district)
    distinct = set(needs)
    complex_level = level == 3 or any(n in COMPLEX for n in distinct) or len(distinct) >= 4
    if complex_level and locality is not None:
        return out("targeted_family_help", locality["targeted_team"], "amber", "complex_needs")
    if complex_level:
        return out("manual_triage", "front-door-triage", "amber", "complex_unplaced")
    if not pre_birth and age >= 11 and any(n in YOUTH for n in distinct):
        return out("youth_support", "youth-support", "green", "youth")
    if (pre_birth or age < 5) and hub is not None:
        return out("family_hub", hub["id"], "green", "early_years")
    if school is not None and all(n in SCHOOL for n in distinct):
        return out("school", "school-" + school["urn"], "green", "school")
    if hub is not None:
        return out("family_hub", hub["id"], "green", "family_hub")
    return out("manual_triage", "front-door-triage", "amber", "default")


# ------------------------------------------------------------------ referrals to try
def transition_days(year):
    """The last Sundays of March and October: the UK's summer time changes."""
    days = []
    for month in (3, 10):
        d = dt.date(year, month, 31)
        while d.weekday() != 6:
            d -= dt.timedelta(days=1)
        days.append(d)
    return days


def gen_occurred(rng, p):
    year = rng.choice([2025, 2026, 2027])
    kind = rng.random()
    if kind < 0.25:
        day = rng.choice(transition_days(year))
    elif kind < 0.45:
        day = rng.choice(sorted(p.holidays))
        day += dt.timedelta(days=rng.randint(-3, 1))
    else:
        day = dt.date(year, 1, 1) + dt.timedelta(days=rng.randint(0, 364))
    # near local midnight often, so the UTC date and the local date differ
    if rng.random() < 0.5:
        local = dt.datetime(day.year, day.month, day.day, rng.choice([0, 23]), rng.randint(0, 59),
                            rng.randint(0, 59), tzinfo=p.zone)
    else:
        local = dt.datetime(day.year, day.month, day.day, rng.randint(0, 23), rng.randint(0, 59),
                            rng.randint(0, 59), tzinfo=p.zone)
    offset = rng.choice([0, 0, 0, 60, -300, 330, 120])
    t = local.astimezone(dt.timezone(dt.timedelta(minutes=offset)))
    s = t.strftime("%Y-%m-%dT%H:%M:%S")
    if rng.random() < 0.2:
        s += ".%03d" % rng.randint(0, 999)
    if offset == 0 and rng.random() < 0.7:
        s += "Z"
    else:
        s += "%+03d:%02d" % (int(offset / 60), abs(offset) % 60)
    return s, local.date()


def gen_dob(rng, received):
    r = rng.random()
    if r < 0.04:
        return rng.choice(["2017-5-2", "2017-02-30", "2017/05/02", "", "17-05-02", 20170502,
                           "2017-05-02T00:00:00Z", "2023-02-29"])
    if r < 0.08:
        return (received + dt.timedelta(days=rng.choice([1, 2, 30]))).isoformat()
    age = rng.choice([0, 1, 4, 5, 6, 10, 11, 12, 15, 18, 19, 20, 24, 25, 26, 40])
    if rng.random() < 0.15:
        year = received.year - age
        while True:
            if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
                break
            year -= 1
        return "%04d-02-29" % year
    try:
        birthday = received.replace(year=received.year - age)
    except ValueError:
        birthday = dt.date(received.year - age, 2, 28)
    return (birthday + dt.timedelta(days=rng.choice([-1, 0, 0, 1, 2, -40, 100]))).isoformat()


def pick(rng, choices):
    return rng.choice(choices)


def gen_referral(rng, p, i):
    occurred, local_day = gen_occurred(rng, p)
    child = {}
    r = rng.random()
    if r < 0.03:
        child["id"] = pick(rng, ["", 7, None, ["C"]])
    elif r > 0.01:
        child["id"] = "C-%06d" % i
    dob_kind = rng.random()
    if dob_kind < 0.8:
        child["date_of_birth"] = gen_dob(rng, local_day)
    elif dob_kind < 0.82:
        child["date_of_birth"] = None
    if dob_kind >= 0.7 and rng.random() < 0.6:
        edd = local_day + dt.timedelta(days=rng.randint(-10, 200))
        child["expected_due_date"] = pick(rng, [edd.isoformat()] * 8 + ["2026-13-01", 5])
    if rng.random() < 0.6:
        child["send"] = pick(rng, [True, False, "true", None, 1])
    u = rng.random()
    if u < 0.6:
        child["school_urn"] = pick(rng, sorted(p.schools) + ["999999", "", 900301])
    districts = sorted(set(p.locality_of_district) | set(p.hub_of_district))
    pc = rng.random()
    if pc < 0.75:
        dd = pick(rng, districts + ["M1", "CA1", "LA1", "EC1A", "W1A"])
        inward = "%d%s%s" % (rng.randint(0, 9), rng.choice("ABDEFGHJLNPQRSTUWXYZ"),
                             rng.choice("ABDEFGHJLNPQRSTUWXYZ"))
        form = rng.random()
        if form < 0.4:
            s = dd + " " + inward
        elif form < 0.6:
            s = (dd + inward).lower()
        elif form < 0.75:
            s = "  " + dd[:2] + " " + dd[2:] + "\t" + inward + " "
        else:
            s = dd + "  " + inward.lower()
        child["postcode"] = s
    elif pc < 0.85:
        child["postcode"] = pick(rng, ["LA9", "LA9 4D", "LA99 4DQQ", "9LA 4DQ", "", 12345,
                                       "LA9-4DQ", "LAA9 4DQ", "L9 4DQ", "LA9A 4DQ"])
    ref = {"id": "REF-OR-%06d" % i}
    if rng.random() > 0.01:
        ref["child"] = child
    fam = {"id": "F-%06d" % i}
    c = rng.random()
    if c < 0.75:
        fam["consent"] = {"early_help": True, "sms": True}
    elif c < 0.85:
        fam["consent"] = {"early_help": pick(rng, [False, "true", None, 1])}
    elif c < 0.9:
        fam["consent"] = pick(rng, [True, "yes", []])
    if rng.random() > 0.03:
        ref["family"] = fam
    lv = rng.random()
    if lv < 0.9:
        ref["level_of_need"] = pick(rng, [1, 2, 2, 2, 3, 3, 4, 2.0, 3.0, 1.0])
    elif lv < 0.97:
        ref["level_of_need"] = pick(rng, ["2", True, 2.5, 0, 5, None, -1, 4.0000001, [2]])
    n = rng.random()
    if n < 0.9:
        k = rng.choice([1, 1, 1, 2, 2, 3, 4, 5])
        groups = rng.choice([SCHOOL, SCHOOL, FAMILY, COMPLEX, YOUTH, SCHOOL + FAMILY,
                             SCHOOL + YOUTH, FAMILY + YOUTH])
        needs = [rng.choice(groups) for _ in range(k)]
        if rng.random() < 0.05:
            needs.append(rng.choice(["unknown_code", "School_Attendance", 3, None]))
        ref["needs"] = needs
    elif n < 0.97:
        ref["needs"] = pick(rng, [[], "parenting", None, {"a": 1}, [None]])
    s = rng.random()
    if s < 0.6:
        ref["safeguarding"] = {"immediate_risk": pick(rng, [False] * 12 + [True, "true", None, 1])}
    elif s < 0.62:
        ref["safeguarding"] = pick(rng, [True, "yes"])
    ev = {"schema_version": 1, "event_id": "00000000-0000-4000-8000-%012d" % i,
          "type": "referral.received", "occurred_at": occurred, "referral": ref}
    return ev


def main():
    binary, config, directory = sys.argv[1:4]
    count = int(sys.argv[4]) if len(sys.argv) > 4 else 20000
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 20261201
    rng = random.Random(seed)
    p = Policy(json.load(open(directory)))
    events = [gen_referral(rng, p, i) for i in range(count)]
    text = "".join(json.dumps(e) + "\n" for e in events)
    res = subprocess.run([binary, "--config", config, "--explain", "-"], input=text.encode(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = res.stdout.decode().splitlines()
    if res.returncode != 0 or len(lines) != count:
        print("FAIL: frontdoord --explain exit %d, %d lines for %d referrals: %s"
              % (res.returncode, len(lines), count, res.stderr.decode()[:500]))
        return 1
    bad = 0
    rules = {}
    for ev, line in zip(events, lines):
        got = json.loads(line)
        want = decide(p, ev)
        have = (got.get("route"), got.get("destination"), got.get("priority"), got.get("rule"),
                got.get("decision_due_at"))
        rules[want[3]] = rules.get(want[3], 0) + 1
        if have != want:
            bad += 1
            if bad <= 10:
                print("FAIL: %s\n  event: %s\n  frontdoord: %s\n  policy:     %s"
                      % (ev["referral"]["id"], json.dumps(ev), have, want))
    print("route_oracle: %d referrals (seed %d), %d disagreements; rules: %s"
          % (count, seed, bad, ", ".join("%s %d" % kv for kv in sorted(rules.items()))))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
