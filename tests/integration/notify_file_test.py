#!/usr/bin/python3
"""Notifications end to end with the file provider (issue 6): Kafka events in, one file
per message in the spool folders out, against a real PostgreSQL (postgres fixture).
`notify_file_test.py 1` runs phases A-D, `notify_file_test.py 2` phases G, E and F.

The daemon runs on its embedded Kafka cluster with FRONTDOOR_TEST_CLOCK set, phase by
phase (each start is a fresh cluster; notifications and cases live in the database):

  A  Tuesday 24 Nov 2026 10:00 (GMT, inside the SMS window): every trigger of the table
     (red double channel, each team, the school officer, triage, consent, signpost, the
     referrer's acknowledgement, a re-route to the panel), each skip reason, booking,
     rescheduling and cancelling appointments, a case closed with a text still queued,
     the test-only language and the English fallback, unusable events (tier-1 and
     step-9), overdue decisions;
  B  21:00 the same day: a family text waits for 08:00, red messages go at once;
  C  07:59:57 next morning: the held text goes at 08:00:00, not before;
  D  Wednesday 2 Dec 14:00:01: the rescheduled reminder goes, cancelled ones never do;
     the school's cover officer while the named officer is absent; more deadlines pass;
  E  Thursday 3 Dec: a red text that could not be sent (no duty phone in this
     directory) alerts the manager 5 minutes later, and 20 triage deadlines pass, with two
     daemons at once on one database: each alert and each overdue row exactly once, and
     400 messages claimed by both dispatchers, every one sent once;
  F  red first: with a backlog held by the rate limit, the first two emails sent are red;
  G  (before E) a 07:00 appointment's reminder goes at 19:59:59 the evening before.
"""
import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import notify_lib
from notify_lib import (PII, SRC, Daemon, Database, booked, cancelled, case_event, check, eq,
                        finish, migrate, notifications, read_eml, read_sms, referral, rmtree,
                        spool_files, tmpdir, wait_until, write_config)

# Two halves, run as two tests (so CTest can run them side by side): 1 = phases A-D,
# 2 = phases E-F, each on its own database.
PART = sys.argv[1] if len(sys.argv) > 1 else "1"
TMP = tmpdir("fd-notify-file-")
DB = Database("notify_file" + PART)
SPOOL_E = os.path.join(TMP, "spool", "email")
SPOOL_S = os.path.join(TMP, "spool", "sms")
REFERRALS, CASE_EVENTS = "frontdoor.referrals", "frontdoor.case-events"
LOGS = []

# templates: the shipped ones and the test-only language `xx`
TEMPLATES = os.path.join(TMP, "templates")
shutil.copytree(os.path.join(SRC, "config", "templates"), TEMPLATES)
shutil.copy(os.path.join(SRC, "tests", "data", "templates", "appointment_booked.xx.sms"), TEMPLATES)


def conf(name, directory=None, spool=None, extra_email=None):
    se, ss = spool or (SPOOL_E, SPOOL_S)
    return write_config(os.path.join(TMP, name + ".conf"), DB, {
        "email": ["spool_dir = " + se] + (extra_email or []),
        "sms": ["spool_dir = " + ss],
    }, directory=directory, templates=TEMPLATES)


def start(cfg, clock, name):
    log = os.path.join(TMP, name + ".log")
    LOGS.append(log)
    return Daemon(cfg, log, clock=clock)


def rows_of(rid):
    return notifications(DB, "referral_id = '%s'" % rid)


def summary(rows):
    """(template, channel, recipient, state, last_error) of each row, sorted."""
    return sorted((r["template"], r["channel"], r["recipient"], r["state"], r["last_error"])
                  for r in rows)


def settled():
    """Nothing due is waiting: no row queued before the clock's now, none sending."""
    return DB.one("SELECT count(*) FROM notifications WHERE state = 'sending' OR"
                  " (state = 'queued' AND not_before <= (SELECT max(created_at) FROM"
                  " notifications) AND red)") == "0"


def file_of(row, spool=None):
    se, ss = spool or (SPOOL_E, SPOOL_S)
    if row["channel"] == "email":
        return os.path.join(se, row["id"] + ".eml")
    return os.path.join(ss, row["id"] + ".sms")


def check_files(rows, what):
    """A file for every sent row and for no other; its contents as the row says."""
    sent = [r for r in rows if r["state"] == "sent"]
    for r in rows:
        exists = os.path.exists(file_of(r))
        if r["state"] == "sent":
            if not check(exists, "%s: %s %s %s sent but no file" % (what, r["referral_id"],
                                                                     r["template"], r["id"])):
                continue
            eq(r["id"] + (".eml" if r["channel"] == "email" else ".sms"), r["provider_ref"],
               "%s: provider_ref names the file" % what)
            eq("file", r["provider"], "%s: provider" % what)
            if r["channel"] == "email":
                m = read_eml(file_of(r))
                eq(r["recipient"], m["To"], "%s: %s To" % (what, r["template"]))
                eq("<%s@example.org>" % r["id"], m["Message-ID"],
                   "%s: %s Message-ID from the notification id" % (what, r["template"]))
                eq(r["template"], m["X-Frontdoor-Template"], "%s: template header" % what)
                eq("family-help@example.org", m["From"], "%s: From" % what)
                body = m.get_content()
                if r["template"] != "unusable_event":
                    check(r["referral_id"] in m["Subject"] or r["referral_id"] in body,
                          "%s: %s names the referral" % (what, r["template"]))
                text = m["Subject"] + body
            else:
                h, body = read_sms(file_of(r))
                eq(r["recipient"], h["To"], "%s: %s To" % (what, r["template"]))
                eq(r["id"], h["Reference"], "%s: sms Reference" % what)
                text = body
            leaked = [p for p in PII if p in text]
            check(not leaked, "%s: %s carries personal data %s" % (what, r["template"], leaked))
        else:
            check(not exists, "%s: %s %s is %s but has a file" % (what, r["referral_id"],
                                                                   r["template"], r["state"]))
    return sent


# ------------------------------------------------------------------ phase A
def phase_a():
    d = start(conf("a"), "2026-11-24T10:00:00Z", "a")
    at = "2026-11-24T09:55:00Z"
    refs = {
        "REF-NF-RED": referral("REF-NF-RED", at, risk=True),
        "REF-NF-TFH": referral("REF-NF-TFH", at, level=3),
        "REF-NF-HUB": referral("REF-NF-HUB", at),
        "REF-NF-YOUTH": referral("REF-NF-YOUTH", at, needs=["neet"], dob="2010-01-01"),
        "REF-NF-SCHOOL": referral("REF-NF-SCHOOL", at, needs=["school_attendance"], urn="900301"),
        "REF-NF-TRIAGE": referral("REF-NF-TRIAGE", at, level=None),
        "REF-NF-CONSENT": referral("REF-NF-CONSENT", at, consent=False),
        "REF-NF-SIGNPOST": referral("REF-NF-SIGNPOST", at, level=1),
        "REF-NF-NOEMAIL": referral("REF-NF-NOEMAIL", at, referrer_email=None),
        "REF-NF-BADEMAIL": referral("REF-NF-BADEMAIL", at,
                                    referrer_email="r@example.org\r\nBcc: x@example.org"),
        # deadlines already past at the clock: Fri 20 Nov (amber: Mon 23 17:00) and
        # Mon 16 Nov awaiting consent (green: Thu 19 17:00)
        "REF-NF-OVERDUE": referral("REF-NF-OVERDUE", "2026-11-20T10:00:00Z", level=None),
        "REF-NF-OVERDUE2": referral("REF-NF-OVERDUE2", "2026-11-16T10:00:00Z", consent=False),
        "REF-NF-NOSMS": referral("REF-NF-NOSMS", at, sms=False),
        "REF-NF-LAND": referral("REF-NF-LAND", at, mobile="01539 000000"),
        "REF-NF-XX": referral("REF-NF-XX", at, language="xx"),
        "REF-NF-PL": referral("REF-NF-PL", at, language="pl"),
        "REF-NF-CLOSE": referral("REF-NF-CLOSE", at),
    }
    for rid, ev in refs.items():
        d.produce(REFERRALS, rid, ev)
    # unusable on the referrals topic (tier 1) and on the case-events topic (no alert)
    d.produce(REFERRALS, "junk", b'{"schema_version": 1, "broken')
    d.produce(CASE_EVENTS, "junk", b"not json at all")
    # step 9 on the referrals topic: the same referral id again, a new event id
    d.produce(REFERRALS, "REF-NF-HUB", referral("REF-NF-HUB", "2026-11-24T09:56:00Z"))
    check(wait_until(lambda: DB.one("SELECT count(*) FROM cases") == str(len(refs)), 30),
          "phase A: every referral has its case")

    ce = [
        case_event("tfh:nocoord", "case.no_coordinator", "REF-NF-TFH", "2026-11-24T09:57:00Z"),
        booked("hub:b1", "REF-NF-HUB", "2026-11-24T09:58:00Z", "A-HUB-1", "2026-12-01T10:30:00Z"),
        booked("hub:b1again", "REF-NF-HUB", "2026-11-24T09:59:00Z", "A-HUB-1",
               "2026-12-03T14:00:00Z"),
        booked("hub:b2", "REF-NF-HUB", "2026-11-24T09:59:10Z", "A-HUB-2", "2026-12-10T09:00:00Z"),
        cancelled("hub:c2", "REF-NF-HUB", "2026-11-24T09:59:20Z", "A-HUB-2"),
        booked("nosms:b", "REF-NF-NOSMS", "2026-11-24T09:58:00Z", "A-NOSMS-1",
               "2026-12-01T10:30:00Z"),
        booked("land:b", "REF-NF-LAND", "2026-11-24T09:58:00Z", "A-LAND-1", "2026-12-01T10:30:00Z"),
        booked("xx:b", "REF-NF-XX", "2026-11-24T09:58:00Z", "A-XX-1", "2026-12-01T10:30:00Z"),
        booked("pl:b", "REF-NF-PL", "2026-11-24T09:58:00Z", "A-PL-1", "2026-12-01T10:30:00Z"),
        booked("close:b", "REF-NF-CLOSE", "2026-11-24T09:58:00Z", "A-CL-1", "2026-12-05T10:00:00Z"),
        booked("youth:soon", "REF-NF-YOUTH", "2026-11-24T09:58:00Z", "A-SOON",
               "2026-11-25T09:00:00Z"),
    ]
    for e in ce:
        d.produce(CASE_EVENTS, e["case"]["referral_id"], e)
    # the case closes once its booking text went (a text still queued would be cancelled)
    check(wait_until(lambda: DB.one("SELECT state FROM notifications WHERE appointment_id ="
                                    " 'A-CL-1' AND template = 'appointment_booked'") == "sent", 30),
          "phase A: the booking text of REF-NF-CLOSE sent")
    close = case_event("close:c", "case.closed", "REF-NF-CLOSE", "2026-11-24T09:59:00Z",
                       outcome="confidential outcome words")
    d.produce(CASE_EVENTS, "REF-NF-CLOSE", close)
    ce.append(close)
    check(wait_until(lambda: DB.one("SELECT count(*) FROM processed_events WHERE topic = '%s'"
                                    % CASE_EVENTS) == str(len(ce)), 30),
          "phase A: every case event processed")
    # the overdue timer runs every 5 s; everything due is sent within a few seconds
    wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE template ="
                              " 'decision_overdue' AND state = 'sent'") == "2", 20)
    wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE state IN"
                              " ('queued', 'sending') AND not_before <= '2026-11-24T10:00:30Z'")
               == "0", 20)
    time.sleep(4.5)  # two more timer rounds: nothing is created twice
    rc = d.stop()
    eq(0, rc, "phase A: exit status after SIGTERM")

    H = "+447700900123"
    R = "referrer@example.org"
    want = {
        "REF-NF-RED": [("referral_acknowledged", "email", R, "sent", ""),
                       ("safeguarding_alert", "email", "safeguarding-hub@example.org", "sent", ""),
                       ("safeguarding_alert", "sms", "+447700900001", "sent", "")],
        "REF-NF-TFH": [("case_allocated", "email", "family-help-panel@example.org", "sent", ""),
                       ("case_allocated", "email", "tfh-south-lakes@example.org", "sent", ""),
                       ("referral_acknowledged", "email", R, "sent", "")],
        "REF-NF-HUB": [("appointment_booked", "sms", H, "sent", ""),
                       ("appointment_booked", "sms", H, "sent", ""),
                       ("appointment_booked", "sms", H, "sent", ""),
                       ("appointment_cancelled", "sms", H, "sent", ""),
                       ("appointment_reminder", "sms", H, "cancelled", "appointment_cancelled"),
                       ("appointment_reminder", "sms", H, "cancelled", "rescheduled"),
                       ("appointment_reminder", "sms", H, "queued", ""),
                       ("case_allocated", "email", "hub-kendal@example.org", "sent", ""),
                       ("referral_acknowledged", "email", R, "sent", "")],
        "REF-NF-YOUTH": [("appointment_booked", "sms", H, "sent", ""),
                         ("case_allocated", "email", "youth-support@example.org", "sent", ""),
                         ("referral_acknowledged", "email", R, "sent", "")],
        "REF-NF-SCHOOL": [("case_allocated", "email", "eho.900301@example.org", "sent", ""),
                          ("referral_acknowledged", "email", R, "sent", "")],
        "REF-NF-TRIAGE": [("referral_acknowledged", "email", R, "sent", ""),
                          ("triage_needed", "email", "family-help-front-door@example.org", "sent",
                           "")],
        "REF-NF-CONSENT": [("consent_needed", "email", R, "sent", "")],
        "REF-NF-SIGNPOST": [("signposted", "email", R, "sent", "")],
        "REF-NF-NOEMAIL": [("case_allocated", "email", "hub-kendal@example.org", "sent", ""),
                           ("referral_acknowledged", "email", "", "skipped", "no_email")],
        "REF-NF-BADEMAIL": [("case_allocated", "email", "hub-kendal@example.org", "sent", ""),
                            ("referral_acknowledged", "email", "", "skipped", "invalid_email")],
        "REF-NF-OVERDUE": [("decision_overdue", "email", "front-door-manager@example.org", "sent",
                            ""),
                           ("referral_acknowledged", "email", R, "sent", ""),
                           ("triage_needed", "email", "family-help-front-door@example.org", "sent",
                            "")],
        "REF-NF-OVERDUE2": [("consent_needed", "email", R, "sent", ""),
                            ("decision_overdue", "email", "front-door-manager@example.org", "sent",
                             "")],
        "REF-NF-NOSMS": [("appointment_booked", "sms", "", "skipped", "no_sms_consent"),
                         ("appointment_reminder", "sms", "", "skipped", "no_sms_consent"),
                         ("case_allocated", "email", "hub-kendal@example.org", "sent", ""),
                         ("referral_acknowledged", "email", R, "sent", "")],
        "REF-NF-LAND": [("appointment_booked", "sms", "", "skipped", "invalid_mobile"),
                        ("appointment_reminder", "sms", "", "skipped", "invalid_mobile"),
                        ("case_allocated", "email", "hub-kendal@example.org", "sent", ""),
                        ("referral_acknowledged", "email", R, "sent", "")],
        "REF-NF-XX": [("appointment_booked", "sms", H, "sent", ""),
                      ("appointment_reminder", "sms", H, "queued", ""),
                      ("case_allocated", "email", "hub-kendal@example.org", "sent", ""),
                      ("referral_acknowledged", "email", R, "sent", "")],
        "REF-NF-PL": [("appointment_booked", "sms", H, "sent", ""),
                      ("appointment_reminder", "sms", H, "queued", ""),
                      ("case_allocated", "email", "hub-kendal@example.org", "sent", ""),
                      ("referral_acknowledged", "email", R, "sent", "")],
        "REF-NF-CLOSE": [("appointment_booked", "sms", H, "sent", ""),
                         ("appointment_reminder", "sms", H, "cancelled", "case_closed"),
                         ("case_allocated", "email", "hub-kendal@example.org", "sent", ""),
                         ("case_closed", "email", R, "sent", ""),
                         ("referral_acknowledged", "email", R, "sent", "")],
    }
    for rid, w in want.items():
        eq(sorted(w), summary(rows_of(rid)), "phase A: notifications of %s" % rid)

    rows = notifications(DB)
    check_files(rows, "phase A")
    red = [r for r in rows if r["red"]]
    eq(sorted(["safeguarding_alert", "safeguarding_alert", "unusable_event", "unusable_event"]),
       sorted(r["template"] for r in red), "phase A: red rows (alert twice, two unusable)")

    # unusable events: one per referrals-topic event, none for the case-events topic
    un = [r for r in rows if r["template"] == "unusable_event"]
    eq(["family-help-front-door@example.org"] * 2, [r["recipient"] for r in un],
       "unusable_event goes to the triage inbox")
    eq(sorted(["invalid_json", "duplicate_referral"]),
       sorted(r["personalisation"]["error"] for r in un), "unusable_event error codes")
    for r in un:
        eq("frontdoor.referrals", r["personalisation"]["topic"], "unusable_event topic")
        eq(["error", "offset", "partition", "topic"], sorted(r["personalisation"]),
           "unusable_event carries topic, partition, offset and error only")
        eq("", r["referral_id"], "unusable_event belongs to no case")
        body = read_eml(file_of(r)).get_content()
        check("Offset: %s" % r["personalisation"]["offset"] in body and
              "Error: %s" % r["personalisation"]["error"] in body,
              "unusable_event file names offset and error")
    coords = DB.rows("SELECT (headers->2->>1), (headers->3->>1), (headers->4->>1),"
                     " (headers->0->>1) FROM outbox WHERE kind = 'dlq'")
    eq([["frontdoor.referrals", r["personalisation"]["partition"], r["personalisation"]["offset"],
         "duplicate_referral"] for r in un if r["personalisation"]["error"] == "duplicate_referral"],
       coords, "the step-9 alert names the DLQ message's coordinates")

    # timing: staff and red at once, a family text in the window at once, reminders 24 h
    # before (the rescheduled one for the new time)
    hub = rows_of("REF-NF-HUB")
    rem = [r for r in hub if r["template"] == "appointment_reminder"]
    eq(["2026-11-30T10:30:00Z", "2026-12-02T14:00:00Z", "2026-12-09T09:00:00Z"],
       sorted(r["not_before"] for r in rem), "reminders 24 h before each booking")
    queued = [r for r in rem if r["state"] == "queued"]
    eq(["2026-12-02T14:00:00Z"], [r["not_before"] for r in queued],
       "only the rescheduled time's reminder is pending")
    eq(["A-HUB-1"], [r["appointment_id"] for r in queued], "the pending reminder's appointment")
    for r in rows:
        if r["state"] == "sent" and r["template"] != "decision_overdue":
            check(r["sent_at"] < "2026-11-24T10:00:30Z",
                  "phase A: %s %s sent at once (%s)" % (r["referral_id"], r["template"],
                                                         r["sent_at"]))
    eq([], [r["referral_id"] for r in rows if r["template"] == "appointment_reminder" and
            r["appointment_id"] == "A-SOON"], "no reminder for an appointment within 24 h")

    # family texts: their words
    by_t = {}
    for r in hub:
        by_t.setdefault(r["template"], []).append(r)
    texts = [read_sms(file_of(r))[1] for r in by_t["appointment_booked"]]
    check(any("Tuesday 1 December 2026 at 10:30am" in t for t in texts) and
          any("Thursday 3 December 2026 at 2pm" in t for t in texts),
          "booking texts give the local date and time: %s" % texts)
    check(all("Family Help Worker from Kendal Family Hub" in t and
              "Kendal Family Hub, Sample Street" in t for t in texts),
          "booking texts name the worker, team and place")
    ctext = read_sms(file_of(by_t["appointment_cancelled"][0]))[1]
    check("Thursday 10 December 2026 at 9am has been cancelled" in ctext,
          "the cancellation text gives the booked date and time: %s" % ctext)
    xx = [r for r in rows_of("REF-NF-XX") if r["template"] == "appointment_booked"][0]
    h, t = read_sms(file_of(xx))
    eq("xx", h["Language"], "test-only language recorded")
    check(t.startswith("XX-TEST booked Tuesday 1 December 2026 10:30am"),
          "the family's language template is used: %r" % t)
    pl = [r for r in rows_of("REF-NF-PL") if r["template"] == "appointment_booked"][0]
    eq("pl", pl["language"], "the family's language is kept")
    check(read_sms(file_of(pl))[1].startswith("Hello. Your appointment"),
          "no Polish template: English is used")
    # staff messages: the decision, never the referral's words
    tfh = [r for r in rows_of("REF-NF-TFH") if r["recipient"] == "tfh-south-lakes@example.org"][0]
    m = read_eml(file_of(tfh))
    eq("New referral for Targeted Family Help, South Lakeland: REF-NF-TFH", m["Subject"],
       "case_allocated subject")
    body = m.get_content()
    check("Priority: amber" in body and "Decision due by: 5pm on Wednesday 25 November 2026" in body
          and "Rule: complex_needs" in body, "case_allocated body: %s" % body)
    od = [r for r in rows_of("REF-NF-OVERDUE") if r["template"] == "decision_overdue"][0]
    check("Decision was due by: 5pm on Monday 23 November 2026" in read_eml(file_of(od)).get_content(),
          "decision_overdue names the passed deadline")
    eq(["decision_overdue:REF-NF-OVERDUE:%d" % 1795453200],
       [x[0] for x in DB.rows("SELECT dedupe_key FROM notifications WHERE referral_id ="
                              " 'REF-NF-OVERDUE' AND template = 'decision_overdue'")],
       "decision_overdue keyed by case and deadline")
    eq("0", DB.one("SELECT count(*) FROM notifications WHERE template = 'decision_overdue' AND"
                   " referral_id NOT IN ('REF-NF-OVERDUE', 'REF-NF-OVERDUE2')"),
       "no decision_overdue before a deadline")


# ------------------------------------------------------------------ phases B, C
def phase_b():
    d = start(conf("b"), "2026-11-24T21:00:00Z", "b")
    d.produce(REFERRALS, "REF-NF-NIGHT", referral("REF-NF-NIGHT", "2026-11-24T20:59:00Z"))
    d.produce(REFERRALS, "REF-NF-RED2", referral("REF-NF-RED2", "2026-11-24T20:59:00Z", risk=True))
    check(wait_until(lambda: DB.one("SELECT count(*) FROM cases WHERE referral_id IN"
                                    " ('REF-NF-NIGHT', 'REF-NF-RED2')") == "2", 20),
          "phase B: referrals in")
    e = booked("night:b", "REF-NF-NIGHT", "2026-11-24T21:00:05Z", "A-N-1", "2026-12-08T10:00:00Z")
    d.produce(CASE_EVENTS, "REF-NF-NIGHT", e)
    check(wait_until(lambda: len([r for r in rows_of("REF-NF-NIGHT")
                                  if r["template"] == "appointment_booked"]) == 1, 20),
          "phase B: booking text created")
    wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE referral_id IN"
                              " ('REF-NF-RED2', 'REF-NF-NIGHT') AND state = 'sent'") == "5", 15)
    time.sleep(2)
    eq(0, d.stop(), "phase B: exit status")
    red2 = rows_of("REF-NF-RED2")
    eq([("referral_acknowledged", "sent"), ("safeguarding_alert", "sent"),
        ("safeguarding_alert", "sent")], sorted((r["template"], r["state"]) for r in red2),
       "phase B: red text and email at 21:00 are not held by the window")
    for r in red2:
        check("2026-11-24T21:00:00Z" <= r["sent_at"] < "2026-11-24T21:01:00Z",
              "phase B: %s %s sent at once (%s)" % (r["template"], r["channel"], r["sent_at"]))
    b = [r for r in rows_of("REF-NF-NIGHT") if r["template"] == "appointment_booked"][0]
    eq(("queued", "2026-11-25T08:00:00Z", 0), (b["state"], b["not_before"], b["attempts"]),
       "phase B: a booking text at 21:00 waits for 08:00")
    check(not os.path.exists(file_of(b)), "phase B: no file for the held text")
    staff = [r for r in rows_of("REF-NF-NIGHT") if r["channel"] == "email"]
    eq(["sent", "sent"], [r["state"] for r in staff], "phase B: staff emails go at night")
    check_files(rows_of("REF-NF-RED2") + rows_of("REF-NF-NIGHT"), "phase B")
    return b


def phase_c(held):
    d = start(conf("c"), "2026-11-25T07:59:57Z", "c")
    time.sleep(1.5)
    r = notifications(DB, "id = '%s'" % held["id"])[0]
    eq("queued", r["state"], "phase C: still held at 07:59:58")
    check(wait_until(lambda: notifications(DB, "id = '%s'" % held["id"])[0]["state"] == "sent", 15),
          "phase C: the held text is sent once the window opens")
    eq(0, d.stop(), "phase C: exit status")
    r = notifications(DB, "id = '%s'" % held["id"])[0]
    check("2026-11-25T08:00:00Z" <= r["sent_at"] < "2026-11-25T08:00:30Z",
          "phase C: sent at 08:00 (%s)" % r["sent_at"])
    check_files([r], "phase C")


# ------------------------------------------------------------------ phase D
def phase_d():
    d = start(conf("d"), "2026-12-02T14:00:01Z", "d")
    d.produce(REFERRALS, "REF-NF-COVER",
              referral("REF-NF-COVER", "2026-12-02T13:59:00Z", needs=["school_attendance"],
                       urn="900102", postcode="LA14 1AA"))
    check(wait_until(lambda: len([r for r in rows_of("REF-NF-COVER") if r["state"] == "sent"]) == 2,
                     20), "phase D: cover referral told")
    check(wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE template ="
                                    " 'appointment_reminder' AND state = 'queued' AND not_before"
                                    " <= '2026-12-02T14:00:01Z'") == "0", 15),
          "phase D: every due reminder sent")
    wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE template ="
                              " 'decision_overdue'") == "4", 15)
    time.sleep(4.5)
    eq(0, d.stop(), "phase D: exit status")
    cover = [r for r in rows_of("REF-NF-COVER") if r["template"] == "case_allocated"]
    eq(["cover.900102@example.org"], [r["recipient"] for r in cover],
       "phase D: the cover officer while the named officer is absent")
    rem = [r for r in rows_of("REF-NF-HUB") if r["template"] == "appointment_reminder"]
    eq(sorted([("2026-11-30T10:30:00Z", "cancelled"), ("2026-12-02T14:00:00Z", "sent"),
               ("2026-12-09T09:00:00Z", "cancelled")]),
       sorted((r["not_before"], r["state"]) for r in rem),
       "phase D: the rescheduled reminder went, the replaced and cancelled ones never did")
    sent = [r for r in rem if r["state"] == "sent"][0]
    check("Thursday 3 December 2026 at 2pm" in read_sms(file_of(sent))[1],
          "phase D: the reminder gives the new time")
    for rid in ("REF-NF-XX", "REF-NF-PL"):
        rr = [r for r in rows_of(rid) if r["template"] == "appointment_reminder"]
        eq(["sent"], [r["state"] for r in rr], "phase D: reminder of %s sent" % rid)
    nr = [r for r in rows_of("REF-NF-NIGHT") if r["template"] == "appointment_reminder"]
    eq([("queued", "2026-12-07T10:00:00Z")], [(r["state"], r["not_before"]) for r in nr],
       "phase D: a later reminder waits for its day")
    # TRIAGE (due Wed 25 Nov) and CONSENT (due Fri 27 Nov) passed their deadlines since
    od = DB.rows("SELECT referral_id, count(*) FROM notifications WHERE template ="
                 " 'decision_overdue' GROUP BY referral_id ORDER BY referral_id")
    eq([["REF-NF-CONSENT", "1"], ["REF-NF-OVERDUE", "1"], ["REF-NF-OVERDUE2", "1"],
        ["REF-NF-TRIAGE", "1"]], od, "phase D: one decision_overdue per case deadline")
    check_files(notifications(DB), "phase D")


# ------------------------------------------------------------------ phase E
def phase_e():
    # a directory whose duty team has no phone: the red text cannot be sent
    with open(os.path.join(SRC, "config", "directory.json")) as f:
        dj = json.load(f)
    for t in dj["teams"]:
        if t["id"] == "social-care-duty":
            del t["phone"]
    dpath = os.path.join(TMP, "directory-nophone.json")
    with open(dpath, "w") as f:
        json.dump(dj, f)
    d = start(conf("e1", directory=dpath), "2026-12-03T16:58:00Z", "e1")
    d.produce(REFERRALS, "REF-NF-RED3", referral("REF-NF-RED3", "2026-12-03T16:57:00Z", risk=True))
    late = ["REF-NF-E-%02d" % i for i in range(20)]
    for rid in late:  # incomplete, received Wed 2 Dec: due Thu 3 Dec 17:00
        d.produce(REFERRALS, rid, referral(rid, "2026-12-02T10:00:00Z", level=None))
    check(wait_until(lambda: DB.one("SELECT count(*) FROM cases WHERE referral_id LIKE"
                                    " 'REF-NF-E-%%' OR referral_id = 'REF-NF-RED3'") == "21", 30),
          "phase E1: referrals in")
    wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE state = 'sending' OR"
                              " (state = 'queued' AND not_before <= '2026-12-03T16:58:30Z')")
               == "0", 20)
    eq(0, d.stop(), "phase E1: exit status")
    red3 = rows_of("REF-NF-RED3")
    eq(sorted([("referral_acknowledged", "email", "sent", ""),
               ("safeguarding_alert", "email", "sent", ""),
               ("safeguarding_alert", "sms", "skipped", "no_recipient")]),
       sorted((r["template"], r["channel"], r["state"], r["last_error"]) for r in red3),
       "phase E1: the red text has no duty phone to go to")
    eq("0", DB.one("SELECT count(*) FROM notifications WHERE template IN ('decision_overdue',"
                   " 'safeguarding_alert_failed') AND created_at >= '2026-12-03T00:00:00Z'"),
       "phase E1: nothing overdue or late yet")

    # six minutes later, two daemons on the database at once
    spools = [(os.path.join(TMP, "e2-%d" % k, "email"), os.path.join(TMP, "e2-%d" % k, "sms"))
              for k in range(2)]
    ds = [start(conf("e2-%d" % k, directory=dpath, spool=spools[k],
                     extra_email=["max_in_flight = 4"]), "2026-12-03T17:04:00Z", "e2-%d" % k)
          for k in range(2)]
    many = {k: ["REF-NF-M%d-%03d" % (k, i) for i in range(100)] for k in range(2)}
    for k in range(2):
        for rid in many[k]:
            ds[k].produce(REFERRALS, rid, referral(rid, "2026-12-03T17:03:00Z"))
    allmany = many[0] + many[1]
    inlist = "(" + ",".join("'%s'" % r for r in allmany) + ")"
    check(wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE referral_id IN %s"
                                    " AND state = 'sent'" % inlist) == "400", 60),
          "phase E2: 400 messages of 200 referrals sent by two daemons")
    time.sleep(5)  # both daemons' timers run at least twice after the deadlines passed
    for k in range(2):
        eq(0, ds[k].stop(), "phase E2: daemon %d exit status" % k)

    od = DB.rows("SELECT referral_id, count(*), min(state) FROM notifications WHERE template ="
                 " 'decision_overdue' AND referral_id LIKE 'REF-NF-E-%%' GROUP BY referral_id")
    eq(20, len(od), "phase E2: every passed deadline has its decision_overdue")
    eq([], [r for r in od if r[1] != "1" or r[2] != "sent"],
       "phase E2: exactly one decision_overdue per case deadline, sent, with two daemons")
    sms = [r for r in red3 if r["channel"] == "sms"][0]
    alerts = notifications(DB, "template = 'safeguarding_alert_failed'")
    eq(sorted([("email", "front-door-manager@example.org", "sent"),
               ("sms", "+447700900002", "sent")]),
       sorted((a["channel"], a["recipient"], a["state"]) for a in alerts),
       "phase E2: one safeguarding_alert_failed by email and one by text, to the manager")
    for a in alerts:
        eq((sms["id"], "safeguarding_alert", "sms", "REF-NF-RED3"),
           (a["personalisation"].get("alert_id"), a["personalisation"].get("alert_template"),
            a["personalisation"].get("alert_channel"), a["personalisation"].get("referral_id")),
           "phase E2: the alert names the red text that failed")
        check(a["red"], "phase E2: the alert is red itself")
        path = file_of(a, spools[0]) if os.path.exists(file_of(a, spools[0])) else file_of(a, spools[1])
        text = (read_eml(path).get_content() if a["channel"] == "email" else read_sms(path)[1])
        check("REF-NF-RED3" in text and "safeguarding_alert" in text,
              "phase E2: alert %s text: %s" % (a["channel"], text))

    # the claims: each of the 400 rows sent once, by one of the two daemons
    rows = notifications(DB, "referral_id IN %s" % inlist)
    files = [set(spool_files(spools[k][0])) for k in range(2)]
    both = files[0] & files[1]
    eq(set(), both, "phase E2: no message was written by both daemons")
    names = {r["id"] + ".eml" for r in rows}
    mine = [len(names & files[k]) for k in range(2)]
    eq(400, mine[0] + mine[1], "phase E2: every message has exactly one file")
    check(mine[0] > 0 and mine[1] > 0, "phase E2: both dispatchers claimed rows (%s)" % mine)
    eq([], [r["id"] for r in rows if r["attempts"] != 1], "phase E2: every row claimed once")
    sent_logs = sum(open(os.path.join(TMP, "e2-%d.log" % k)).read().count('msg="notification sent"')
                    for k in range(2))
    check(sent_logs >= 400, "phase E2: the daemons logged the sends")
    print("two daemons: %d and %d of 400 messages" % (mine[0], mine[1]))


# ------------------------------------------------------------------ phase G
def phase_g():
    """A reminder whose time is outside the window goes at the window's last second: at
    19:59:59 the evening before a 07:00 appointment, not a poll later, not next morning."""
    d = start(conf("g1"), "2026-11-28T10:00:00Z", "g1")
    d.produce(REFERRALS, "REF-NF-EARLY", referral("REF-NF-EARLY", "2026-11-28T09:59:00Z"))
    check(wait_until(lambda: DB.one("SELECT count(*) FROM cases WHERE referral_id ="
                                    " 'REF-NF-EARLY'") == "1", 20), "phase G: referral in")
    d.produce(CASE_EVENTS, "REF-NF-EARLY", booked("early:b", "REF-NF-EARLY",
                                                  "2026-11-28T10:00:00Z", "A-EARLY",
                                                  "2026-12-01T07:00:00Z"))
    check(wait_until(lambda: len(rows_of("REF-NF-EARLY")) == 4, 20), "phase G: texts created")
    eq(0, d.stop(), "phase G1: exit status")
    rem = [r for r in rows_of("REF-NF-EARLY") if r["template"] == "appointment_reminder"][0]
    eq(("queued", "2026-11-29T19:59:59Z"), (rem["state"], rem["not_before"]),
       "phase G: the 07:00 appointment's reminder is due at 19:59:59 the evening before")
    d = start(conf("g2"), "2026-11-29T19:59:56Z", "g2")
    check(wait_until(lambda: notifications(DB, "id = '%s'" % rem["id"])[0]["state"] == "sent", 15),
          "phase G2: the reminder sent")
    eq(0, d.stop(), "phase G2: exit status")
    got = DB.one("SELECT to_char(sent_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS') FROM"
                 " notifications WHERE id = '%s'" % rem["id"])
    check("2026-11-29T19:59:59.000" <= got < "2026-11-29T20:00:00.000",
          "phase G2: sent inside the window's last second (%s)" % got)
    check_files(notifications(DB, "id = '%s'" % rem["id"]), "phase G")


# ------------------------------------------------------------------ phase F
def phase_f():
    """Red goes first: with a backlog and room for two emails, the two sent are red."""
    slow = ["rate_limit_per_minute = 1"]
    d = start(conf("f1", extra_email=slow), "2026-12-04T10:00:00Z", "f1")
    d.produce(REFERRALS, "REF-NF-F-BLOCK", referral("REF-NF-F-BLOCK", "2026-12-04T09:59:00Z",
                                                    level=1))
    check(wait_until(lambda: DB.one("SELECT state FROM notifications WHERE referral_id ="
                                    " 'REF-NF-F-BLOCK'") == "sent", 15),
          "phase F1: the one email of this minute sent")
    for i in range(3):
        rid = "REF-NF-F-%d" % i
        d.produce(REFERRALS, rid, referral(rid, "2026-12-04T09:59:10Z"))
    d.produce(REFERRALS, "REF-NF-F-RED", referral("REF-NF-F-RED", "2026-12-04T09:59:20Z",
                                                  risk=True))
    d.produce(REFERRALS, "junk", b"\xff\xfe not UTF-8")
    check(wait_until(lambda: DB.one("SELECT count(*) FROM notifications WHERE (referral_id LIKE"
                                    " 'REF-NF-F-%%' AND referral_id <> 'REF-NF-F-BLOCK') OR"
                                    " (template = 'unusable_event' AND created_at >="
                                    " '2026-12-04T00:00:00Z')") == "10", 20),
          "phase F1: ten notifications waiting")
    time.sleep(1)
    eq(0, d.stop(), "phase F1: exit status")
    waiting = DB.one("SELECT count(*) FROM notifications WHERE channel = 'email' AND state ="
                     " 'queued' AND created_at >= '2026-12-04T00:00:00Z'")
    eq("9", waiting, "phase F1: nine emails held by the rate limit")
    d = start(conf("f2", extra_email=["rate_limit_per_minute = 2"]), "2026-12-04T10:00:40Z", "f2")
    time.sleep(3)
    eq(0, d.stop(), "phase F2: exit status")
    sent = DB.rows("SELECT template, red FROM notifications WHERE channel = 'email' AND state ="
                   " 'sent' AND created_at >= '2026-12-04T00:00:00Z' AND referral_id IS"
                   " DISTINCT FROM 'REF-NF-F-BLOCK' ORDER BY template")
    eq([["safeguarding_alert", "t"], ["unusable_event", "t"]], sent,
       "phase F2: with room for two, the two red emails went first")


def main():
    try:
        conf0 = conf("migrate")
        migrate(conf0)
        if PART == "1":
            phase_a()
            held = phase_b()
            phase_c(held)
            phase_d()
        else:
            phase_g()
            phase_e()
            phase_f()
        # never a duplicate key, never personal data in a log line
        eq("0", DB.one("SELECT count(*) FROM (SELECT dedupe_key FROM notifications WHERE"
                       " dedupe_key IS NOT NULL GROUP BY 1 HAVING count(*) > 1) s"),
           "dedupe keys are unique")
        logs = "".join(open(l, encoding="utf-8", errors="replace").read() for l in LOGS)
        leaked = [p for p in PII + ["07700 900123", "+447700900123", "referrer@example.org",
                                    "rosie@example.org", "safeguarding-hub@example.org"]
                  if p in logs]
        eq([], leaked, "no personal data in the daemon's logs")
        check('msg="notification skipped"' in logs and
              ("reason=no_sms_consent" in logs or PART == "2"), "skips are logged with their reason")
    except Exception as e:  # a crash is a failure, never a skip
        import traceback
        traceback.print_exc()
        check(False, "notify_file raised %r" % e)
    finally:
        if notify_lib.failed:
            for l in LOGS[-2:]:
                print("--- " + l, file=sys.stderr)
                print("\n".join(x for x in open(l).read().splitlines()
                                if "kafka client" not in x)[-3000:], file=sys.stderr)
        DB.drop()
        rmtree(TMP)
    finish("notify_file (part %s)" % PART)


if __name__ == "__main__":
    main()
