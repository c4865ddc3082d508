#!/usr/bin/env python3
"""Collect the published per-program results of SURW and RFF for the
programs ported to model/sct into published.csv.

Usage: collect.py SURW_REPO RFF_REPO > published.csv
  SURW_REPO: a clone of github.com/zhaohuanqdcn/SURW
  RFF_REPO:  a clone of github.com/dylanjwolff/RFF
Both are read with `git show HEAD:<path>`, so bare clones work too.
"""
import csv, io, json, statistics, subprocess, sys

# artifact program name -> our scenario:variant
PORTED = {
    "CS/account": "sct-account:bug",
    "CS/bluetooth_driver": "sct-bluetooth_driver:bug",
    "CS/carter01": "sct-carter01:bug",
    "CS/circular_buffer": "sct-circular_buffer:bug",
    "CS/deadlock01": "sct-deadlock01:bug",
    "CS/lazy01": "sct-lazy01:bug",
    "CS/queue": "sct-queue:bug",
    "CS/stack": "sct-stack:bug",
    "CS/token_ring": "sct-token_ring:bug",
    "CS/wronglock": "sct-wronglock:n7",
    "CS/wronglock_3": "sct-wronglock:n3",
    "CS/reorder_3": "sct-reorder:n3",
    "CS/reorder_4": "sct-reorder:n4",
    "CS/reorder_5": "sct-reorder:n5",
    "CS/reorder_10": "sct-reorder:n10",
    "CS/reorder_20": "sct-reorder:n20",
    "CS/reorder_50": "sct-reorder:n50",
    "CS/reorder_100": "sct-reorder:n100",
    "CS/twostage": "sct-twostage:n2",
    "CS/twostage_20": "sct-twostage:n20",
    "CS/twostage_50": "sct-twostage:n50",
    "CS/twostage_100": "sct-twostage:n100",
    "Chess/WorkStealQueue": "sct-workstealqueue:push-overwrite",
    "Chess/InterlockedWorkStealQueue": "sct-workstealqueue:push-overwrite-spin",
    "Chess/StateWorkStealQueue": "sct-workstealqueue:push-overwrite",
    "Chess/InterlockedWorkStealQueueWithState": "sct-workstealqueue:push-overwrite-spin",
    "ConVul-CVE-Benchmarks/CVE-2009-3547": "cve-2009-3547:bug",
    "ConVul-CVE-Benchmarks/CVE-2013-1792": "cve-2013-1792:bug",
    "ConVul-CVE-Benchmarks/CVE-2015-7550": "cve-2015-7550:bug",
    "ConVul-CVE-Benchmarks/CVE-2016-7911": "cve-2016-7911:bug",
    "ConVul-CVE-Benchmarks/CVE-2017-15265": "cve-2017-15265:bug",
}

# SURW's scripts/analyze/eval_period.py: config file -> tool name in the paper.
SURW_TOOLS = {"rp-urw": "SURW", "pct3": "PCT-3", "pct10": "PCT-10", "pos": "POS", "rw": "RW"}
# RFF's scripts/data-analysis/analyze.py: tool column -> tool name in the paper.
RFF_TOOLS = {"power-coe-always-rand-schedfuzz": "RFF", "pct-no-rff-always-rand-schedfuzz": "PCT3",
             "pos-only-schedfuzz": "POS", "qlearning-schedfuzz": "QLearning"}


def git(repo, *args):
    return subprocess.run(["git", "-C", repo, *args], check=True, capture_output=True, text=True).stdout


def row(source, program, tool, found):
    """found: list of schedules-to-bug of the successful runs, out of runs."""
    runs, hits = found
    med = statistics.median(hits) if hits else ""
    mean = round(statistics.mean(hits), 1) if hits else ""
    return [source, program, PORTED[program], tool, runs, len(hits), med, mean]


def surw(repo):
    files = git(repo, "ls-tree", "-r", "--name-only", "HEAD", "stats/period").split()
    acc = {}
    for f in files:
        parts = f.split("/")
        if len(parts) != 5 or not f.endswith(".json"):
            continue
        program = parts[2] + "/" + parts[3]
        config = parts[4].rsplit("-", 1)[0]
        if program not in PORTED or config not in SURW_TOOLS:
            continue
        d = json.loads(git(repo, "show", "HEAD:" + f))
        it = d["iterations"]
        if config not in ("pos", "rw"):
            it += 1  # as eval_period.py counts them
        runs, hits = acc.setdefault((program, SURW_TOOLS[config]), [0, []])
        acc[(program, SURW_TOOLS[config])][0] = runs + 1
        if d["found"]:
            hits.append(it)
    return [row("SURW stats/period", p, t, v) for (p, t), v in sorted(acc.items())]


def rff(repo):
    text = git(repo, "show", "HEAD:scripts/data-analysis/full-data.csv")
    acc = {}
    for r in csv.reader(io.StringIO(text)):
        if len(r) < 6 or r[0] not in RFF_TOOLS or r[1] not in PORTED:
            continue
        key = (r[1], RFF_TOOLS[r[0]])
        v = acc.setdefault(key, [0, []])
        v[0] += 1
        if r[4] and float(r[4]) > 0:
            v[1].append(int(float(r[5])))
    return [row("RFF full-data.csv", p, t, v) for (p, t), v in sorted(acc.items())]


def main():
    surw_repo, rff_repo = sys.argv[1], sys.argv[2]
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["source", "program", "our_scenario", "tool", "runs", "hits", "median_schedules_to_bug", "mean_schedules_to_bug"])
    for r in surw(surw_repo) + rff(rff_repo):
        w.writerow(r)


if __name__ == "__main__":
    main()
