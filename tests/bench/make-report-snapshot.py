#!/usr/bin/env python3
"""Makes a large snapshot for tests/bench/report.sh: JOBS finished jobs over
RUNNERS runners in one week, in RunnerIQ's snapshot format, cloned from the
real-shaped job and runner objects in tests/fixtures/fleet with ids, names,
tags, times, durations and outcomes varied deterministically.

usage: make-report-snapshot.py JOBS RUNNERS OUT.json.gz
"""
import copy, gzip, json, random, sys

n_jobs, n_runners, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(3)
FROM, TO = 1767571200 - 7 * 86400, 1767571200
fleet_t = json.load(open("tests/fixtures/fleet/fleet.json"))[0]
ZONES = ["FR", "DE", "PL", "SE-SE1", "US-CA", "US-TX", "IN", "gcp:europe-west1", "NO-NO2", "BR"]
NAMES = ["build", "test:unit", "test:e2e", "lint", "deploy", "package", "docs", "scan:sast"]
REFS = ["main", "develop", "feature/a", "feature/b", "hotfix/x", "spike/y"]
runners = []
for i in range(n_runners):
    r = copy.deepcopy(fleet_t)
    r.update({"id": 10000 + i, "description": f"runner-{i}", "name": f"runner-{i}",
              "tag_list": ["docker", "linux"] + rng.sample(["large", "arm64", "gpu", "k8s"], rng.randint(0, 2))})
    r["runneriq"] = {"concurrent": rng.choice([1, 2, 4, 8]), "zone": rng.choice(ZONES),
                     "power_watts": rng.choice([150, 350, 900])}
    runners.append(r)


def iso(t):
    import datetime
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


with gzip.open(out, "wt", compresslevel=1) as f:
    f.write(json.dumps({"kind": "header", "version": 1, "project": "bench", "window": {"from": FROM, "to": TO},
                        "fetched_at": TO, "default_branch": "main", "runners": runners}) + "\n")
    step = (TO - FROM) / n_jobs
    for i in range(n_jobs):
        created = int(FROM + i * step)
        q = rng.randint(1, 600)
        d = rng.randint(20, 1800)
        status = "success" if rng.random() > 0.08 else "failed"
        reason = None if status == "success" else rng.choice(["script_failure", "runner_system_failure"])
        rid = 10000 + rng.randrange(n_runners)
        ref = rng.choice(REFS)
        job = {"id": 1_000_000 + i, "name": rng.choice(NAMES), "stage": "test", "status": status, "ref": ref,
               "tag": False, "allow_failure": False, "created_at": iso(created), "started_at": iso(created + q),
               "finished_at": iso(created + q + d), "duration": float(d), "queued_duration": float(q),
               "failure_reason": reason, "web_url": f"https://gitlab.example.com/g/p/-/jobs/{1_000_000 + i}",
               "tag_list": ["docker"], "runner": {"id": rid, "description": f"runner-{rid - 10000}"},
               "user": {"id": 1 + i % 40, "username": f"u{i % 40}"},
               "pipeline": {"id": 500_000 + i // 6, "sha": f"{i // 6:040x}", "ref": ref, "source": "push"},
               "commit": {"id": f"{i // 6:040x}"}}
        f.write(json.dumps({"kind": "job", "job": job}, separators=(",", ":")) + "\n")
    f.write(json.dumps({"kind": "end", "requests": 0, "jobs": n_jobs}) + "\n")
print(f"made {out}: {n_jobs} jobs, {n_runners} runners")
