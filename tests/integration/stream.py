#!/usr/bin/python3
"""A stream of events for the multi-daemon and outage tests, as "key<TAB>value" lines.

    stream.py SPEC_DIR PREFIX N OUTDIR

Writes OUTDIR/referrals (N referrals: the spec's sample referrals in turn, each with its
own referral id, event id, child and family) and OUTDIR/case-events (a case.closed for
every third referral). Prints the two counts.
"""
import json
import sys
import uuid

spec, prefix, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
samples = [json.loads(l) for l in open(spec + "/examples/referrals.jsonl") if l.strip()]
ns = uuid.uuid5(uuid.NAMESPACE_URL, "frontdoord-test-" + prefix)
n_ce = 0
with open(out + "/referrals", "w") as r, open(out + "/case-events", "w") as c:
    for i in range(n):
        ev = json.loads(json.dumps(samples[i % len(samples)]))
        rid = "REF-%s-%06d" % (prefix, i)
        ev["event_id"] = str(uuid.uuid5(ns, "r%d" % i))
        ev["referral"]["id"] = rid
        child = ev["referral"].get("child")
        if isinstance(child, dict) and "id" in child:
            child["id"] = "C-%s-%06d" % (prefix, i)
        fam = ev["referral"].get("family")
        if isinstance(fam, dict) and "id" in fam:
            fam["id"] = "F-%s-%06d" % (prefix, i)
        r.write("%s\t%s\n" % (rid, json.dumps(ev)))
        if i % 3 == 0:
            ce = {"schema_version": 1, "event_id": str(uuid.uuid5(ns, "c%d" % i)),
                  "type": "case.closed", "occurred_at": "2026-11-30T09:00:00Z",
                  "case": {"referral_id": rid}}
            c.write("%s\t%s\n" % (rid, json.dumps(ce)))
            n_ce += 1
print(n, n_ce)
