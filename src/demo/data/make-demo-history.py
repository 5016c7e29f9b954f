#!/usr/bin/env python3
"""Regenerates src/demo/data/week.json.gz: one week of a demo project's CI
history in RunnerIQ's snapshot format (gzip JSON Lines: header with the fleet,
then job records, then classified categories, then the end record).

Jobs follow the shape of the real API responses in
tests/fixtures/gitlab/api/pipeline_jobs.kitware.json (trimmed to the fields
RunnerIQ reads); runners follow tests/fixtures/fleet/fleet.json. Everything
else (names, times, outcomes) is made up, deterministically (seed 7), to show
each part of the report: a slow runner, an idle GPU runner, a runner with
infrastructure failures, lint waiting behind everything, flaky jobs.
Run from the repository root.
"""
import gzip, json, random

rng = random.Random(7)
FROM = 1763251200  # 2025-11-16T00:00:00Z, a Sunday... shifted below
FROM = 1763337600  # 2025-11-17T00:00:00Z (Monday)
DAYS = 7
BASE = "https://gitlab.example.com/acme/vision"

fleet = json.load(open("tests/fixtures/fleet/fleet.json"))
# slots, zone, watts, cost per hour (the whole runner; cloud list prices of
# comparable machines, rounded; no currency is named, as in a fleet file)
keep = {101: (4, "FR", 350, 0.34), 102: (4, "DE", 350, 0.31), 103: (2, "PL", 900, 0.68), 104: (1, "US-CA", 1200, 2.48), 107: (2, "gcp:europe-west1", 200, 0.10)}
runners = []
for r in fleet:
    if r["id"] in keep:
        c, z, w, cost = keep[r["id"]]
        r = dict(r, paused=False, active=True, status="online", online=True)
        r["runneriq"] = {"concurrent": c, "zone": z, "power_watts": w, "cost_per_hour": cost}
        runners.append(r)

def iso(t):
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"

PIPE = [  # name, stage, tags, base duration, runners allowed
    ("build:linux", "build", ["docker", "linux"], 420, [101, 102, 103]),
    ("test:unit", "test", ["docker", "linux"], 300, [101, 102]),
    ("test:e2e", "test", ["docker", "linux"], 600, [101, 102, 103]),
    ("lint", "lint", ["docker"], 60, [101, 102]),
    ("docs", "build", [], 90, [107]),
    ("deploy:staging", "deploy", ["docker"], 180, [101, 102]),
]
jobs, cats = [], []
jid, pid = 500000, 90000
busy_until = {}
for day in range(DAYS):
    for k in range(18 if day < 5 else 5):
        pid += 1
        ref = "main" if k % 3 == 0 else rng.choice(["feature/login", "feature/cache", "hotfix/cve-2025-1", "spike/rust"])
        sha = f"{pid:040x}"
        t = FROM + day * 86400 + 7 * 3600 + k * 1700 + rng.randint(0, 600)
        for name, stage, tags, dur, allowed in PIPE:
            if name.startswith("deploy") and ref != "main":
                continue
            attempts = 1
            # test:e2e is flaky on feature branches: fails, then passes on retry.
            if name == "test:e2e" and ref != "main" and rng.random() < 0.25:
                attempts = 2
            for a in range(attempts):
                jid += 1
                runner = rng.choice(allowed)
                d = dur * (1.0 + rng.random() * 0.3)
                if runner == 102:
                    d *= 2.6  # the slow runner
                if name == "build:linux" and rng.random() < 0.05:
                    runner = 104  # the GPU runner takes the odd job
                lint_wait = 240 if name == "lint" else 0
                q = rng.uniform(2, 40) + lint_wait * rng.random() + (120 if ref.startswith("spike") else 0)
                status, reason = "success", None
                if attempts == 2 and a == 0:
                    status, reason = "failed", "script_failure"
                elif runner == 102 and rng.random() < 0.09:
                    status, reason = "failed", "runner_system_failure"
                    d = 30
                elif name in ("build:linux", "test:unit") and rng.random() < 0.06:
                    status, reason = "failed", "script_failure"
                created = t + a * 900
                started = created + int(q)
                j = {"id": jid, "name": name, "stage": stage, "status": status, "ref": ref, "tag": False,
                     "allow_failure": False, "created_at": iso(created), "started_at": iso(started),
                     "finished_at": iso(started + int(d)), "duration": round(d, 1), "queued_duration": round(q, 1),
                     "failure_reason": reason, "web_url": f"{BASE}/-/jobs/{jid}", "tag_list": tags,
                     "runner": {"id": runner, "description": next(r["description"] for r in runners if r["id"] == runner)},
                     "user": {"id": 7 if k % 2 else 9, "username": "ada" if k % 2 else "bob"},
                     "pipeline": {"id": pid, "project_id": 101, "sha": sha, "ref": ref, "source": "push"},
                     "commit": {"id": sha}}
                jobs.append(j)
                if status == "failed" and reason == "script_failure":
                    cats.append((jid, "test_failure" if name.startswith("test") else "compilation"))
header = {"kind": "header", "version": 1, "project": "acme/vision (demo)",
          "window": {"from": FROM, "to": FROM + DAYS * 86400}, "fetched_at": FROM + DAYS * 86400,
          "default_branch": "main", "runners": runners}
with gzip.GzipFile("src/demo/data/week.json.gz", "wb", mtime=0) as f:
    def line(o):
        f.write((json.dumps(o, separators=(",", ":")) + "\n").encode())
    line(header)
    for j in jobs:
        line({"kind": "job", "job": j})
    for jid, c in cats:
        line({"kind": "category", "job": jid, "category": c})
    line({"kind": "end", "requests": 0, "jobs": len(jobs)})
print(len(jobs), "jobs")
