#!/usr/bin/env python3
"""Makes a large routing input for tests/bench/route.sh: N waiting jobs, M
runners and 5,000 finished jobs, cloned from the real-shaped objects in
tests/fixtures/fleet with ids, tags, zones and refs varied deterministically.

usage: make-route-input.py JOBS RUNNERS OUTDIR
"""
import copy, json, os, random, sys

n_jobs, n_runners, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = random.Random(42)
here = "tests/fixtures/fleet"
fleet_t = json.load(open(os.path.join(here, "fleet.json")))[0]
job_t = json.load(open(os.path.join(here, "jobs.json")))[0]
TAGS = ["docker", "linux", "large", "arm64", "gpu", "windows", "macos", "k8s", "deploy", "cache"]
ZONES = ["FR", "DE", "PL", "SE-SE1", "SE-SE3", "US-CA", "US-TX", "IN", "BR", "gcp:europe-west1", "NO-NO2"]
REFS = ["main", "develop", "feature/a", "feature/b", "hotfix/cve", "release/2.0", "spike/x"]
NAMES = ["build", "test:unit", "test:e2e", "lint", "deploy:staging", "package", "docs", "scan:sast"]
NOW = 1767261600

fleet = []
for i in range(n_runners):
    r = copy.deepcopy(fleet_t)
    tags = ["docker", "linux"] if rng.random() < 0.7 else []
    tags += rng.sample(TAGS[2:], rng.randint(0, 3))
    r.update({"id": 10_000 + i, "description": f"runner-{i}", "name": f"runner-{i}", "tag_list": sorted(set(tags)),
              "status": "online" if rng.random() < 0.9 else "offline", "paused": rng.random() < 0.05,
              "run_untagged": rng.random() < 0.6,
              "access_level": "ref_protected" if rng.random() < 0.1 else "not_protected"})
    r["runneriq"] = {"concurrent": rng.choice([1, 2, 4, 8]), "zone": rng.choice(ZONES)}
    fleet.append(r)


def mkjob(id, status, created, runner=None, duration=None, reason=None):
    j = copy.deepcopy(job_t)
    name = rng.choice(NAMES)
    tags = ["docker"] if rng.random() < 0.8 else []
    if rng.random() < 0.4:
        tags.append(rng.choice(TAGS[1:]))
    ref = rng.choice(REFS)
    j.update({"id": id, "name": name, "stage": name.split(":")[0], "status": status, "ref": ref,
              "tag_list": sorted(set(tags)), "allow_failure": rng.random() < 0.1,
              "created_at": f"2026-01-01T0{9 if created < 3600 else 8}:{(created // 60) % 60:02d}:{created % 60:02d}.000Z",
              "duration": duration, "failure_reason": reason})
    j["pipeline"] = dict(j["pipeline"], id=900_000 + id // 7, ref=ref)
    j["user"] = dict(j["user"], id=rng.randint(1, 50))
    j["runner"] = None
    if runner is not None:
        j["runner"] = {"id": runner, "description": f"runner-{runner - 10_000}", "active": True,
                       "is_shared": True, "name": "gitlab-runner", "online": True, "status": "online",
                       "runner_type": "instance_type"}
    return j


jobs = [mkjob(1 + i, "pending", rng.randint(0, 3599)) for i in range(n_jobs)]
history = []
for i in range(5000):
    failed = rng.random() < 0.1
    history.append(mkjob(5_000_000 + i, "failed" if failed else "success", rng.randint(0, 3599),
                         runner=10_000 + rng.randrange(n_runners), duration=float(rng.randint(30, 1800)),
                         reason=rng.choice(["script_failure", "runner_system_failure"]) if failed else None))
for name, data in [("fleet.json", fleet), ("jobs.json", jobs), ("history.json", history)]:
    with open(os.path.join(out, name), "w") as f:
        json.dump(data, f)
print(f"made {n_jobs} jobs, {n_runners} runners, {len(history)} finished jobs in {out}")
