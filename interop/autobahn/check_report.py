#!/usr/bin/env python3
"""Summarise an Autobahn|Testsuite report (OUTDIR/index.json) and fail on non-passing cases.

Exit status 1 when a case's `behavior` or `behaviorClose` is anything but OK or INFORMATIONAL
(FAILED, NON-STRICT, UNIMPLEMENTED, and the close-only verdicts WRONG CODE, UNCLEAN,
FAILED BY CLIENT), or when the report has no cases. With
SOCKEYE_AUTOBAHN_ALLOW_UNIMPLEMENTED_COMPRESSION=1, UNIMPLEMENTED is accepted for the
permessage-deflate cases 12.* and 13.* only.
"""
import json
import os
import sys
from collections import Counter

STANDARD = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]
PASSING = {"OK", "INFORMATIONAL"}


def case_key(case_id):
    # "9.10.2" must sort after "9.2.1".
    return [int(p) if p.isdigit() else p for p in case_id.split(".")]


def passes(case_id, verdict, allow_compression):
    if verdict in PASSING:
        return True
    return (verdict == "UNIMPLEMENTED" and allow_compression
            and case_id.startswith(("12.", "13.")))


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: check_report.py OUTDIR")
    outdir = sys.argv[1]
    try:
        with open(os.path.join(outdir, "index.json")) as f:
            index = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit("FAIL: cannot read the report: %s" % e)
    allow = os.environ.get("SOCKEYE_AUTOBAHN_ALLOW_UNIMPLEMENTED_COMPRESSION") == "1"

    # index.json maps agent -> case id -> result; normally there is a single agent.
    cases = [(agent, cid, res) for agent, results in sorted(index.items())
             for cid, res in sorted(results.items(), key=lambda kv: case_key(kv[0]))]
    behavior = Counter(res["behavior"] for _, _, res in cases)
    close = Counter(res["behaviorClose"] for _, _, res in cases)
    bad = {(agent, cid) for agent, cid, res in cases
           if not (passes(cid, res["behavior"], allow) and passes(cid, res["behaviorClose"], allow))}
    others = [(agent, cid, res) for agent, cid, res in cases
              if (res["behavior"], res["behaviorClose"]) != ("OK", "OK")]

    verdicts = STANDARD + sorted((set(behavior) | set(close)) - set(STANDARD))
    lines = ["| verdict | behavior | behaviorClose |", "| --- | ---: | ---: |"]
    lines += ["| %s | %d | %d |" % (v, behavior[v], close[v]) for v in verdicts]
    lines.append("| total | %d | %d |" % (len(cases), len(cases)))
    multi = len(index) > 1
    detail = ["- %s%s: behavior %s, behaviorClose %s%s" % (
        agent + " " if multi else "", cid, res["behavior"], res["behaviorClose"],
        "" if (agent, cid) in bad else " (allowed)") for agent, cid, res in others]
    if not cases:
        verdict = "FAIL: the report has no cases"
    elif bad:
        verdict = "FAIL: %d of %d cases do not pass" % (len(bad), len(cases))
    else:
        verdict = "PASS: %d cases" % len(cases)

    print("\n".join(lines))
    if detail:
        print("\nCases that are not OK/OK:")
        print("\n".join(detail))
    print("\n" + verdict)

    agents = ", ".join(sorted(index)) or "none"
    md = ["# Autobahn|Testsuite summary (agent: %s)" % agents, "", *lines, ""]
    if detail:
        md += ["## Cases that are not OK/OK", "", *detail, ""]
    md += ["**%s**" % verdict, ""]
    with open(os.path.join(outdir, "summary.md"), "w") as f:
        f.write("\n".join(md))
    sys.exit(0 if cases and not bad else 1)


if __name__ == "__main__":
    main()
