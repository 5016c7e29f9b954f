#!/usr/bin/env python3
"""Regenerates src/demo/data/week-tests.json: the unit test reports of the
demo week's default-branch (`main`) pipelines, for the weekly report's
flakiest tests (`runneriq demo report`).

One record per `main` pipeline of src/demo/data/week.json.gz, newest first:
`{"pipeline", "web_url", "report"}`, where `report` has the shape of
`GET /projects/:id/pipelines/:pipeline_id/test_report` (GitLab's
`TestSuiteEntity`/`TestCaseEntity`, as in go-gitlab's test data, see
tests/fixtures/gitlab/MANIFEST.md), failing cases only: a suite per test job
that ran, and, in the pipelines where `test:unit` failed, the tests that made
it fail. Test names and messages are made up. Deterministic; run from the
repository root.
"""
import gzip, json

BASE = "https://gitlab.example.com/acme/vision"
EVICTION = ("tests.cache.test_lru", "test_eviction_under_concurrent_writes", "tests/cache/test_lru.py",
            "AssertionError: expected 128 entries after eviction, found 129")
SKEW = ("tests.auth.test_tokens", "test_refresh_with_clock_skew", "tests/auth/test_tokens.py",
        "AssertionError: token refreshed 2s late (allowed skew 1s)")
RESUME = ("tests.upload.test_multipart", "test_resume_after_timeout", "tests/upload/test_multipart.py",
          "TimeoutError: part 3 of 5 not acknowledged within 30s")
# The n-th failed `test:unit` run on main failed these tests.
FAILURES = [[EVICTION, SKEW], [EVICTION], [SKEW, RESUME]]
TOTALS = {"test:unit": 412, "test:e2e": 64}

jobs = {}
for line in gzip.open("src/demo/data/week.json.gz").read().decode().splitlines():
    r = json.loads(line)
    if r.get("kind") == "job" and r["job"]["ref"] == "main" and r["job"]["name"] in TOTALS:
        j = r["job"]
        jobs.setdefault(j["pipeline"]["id"], {})[j["name"]] = j["status"]

records, nth = [], 0
for pid in sorted(jobs):
    suites = []
    for name in sorted(jobs[pid]):
        cases = []
        if name == "test:unit" and jobs[pid][name] == "failed":
            for cls, test, path, msg in FAILURES[nth % len(FAILURES)]:
                cases.append({"status": "failed", "name": test, "classname": cls, "file": path,
                              "execution_time": 1.5, "system_output": msg, "stack_trace": None})
            nth += 1
        failed = len(cases)
        suites.append({"name": name, "total_time": 61.5, "total_count": TOTALS[name],
                       "success_count": TOTALS[name] - failed, "failed_count": failed,
                       "skipped_count": 0, "error_count": 0, "suite_error": None, "test_cases": cases})
    count = lambda k: sum(s[k] for s in suites)
    report = {"total_time": 123.0, "total_count": count("total_count"), "success_count": count("success_count"),
              "failed_count": count("failed_count"), "skipped_count": 0, "error_count": 0, "test_suites": suites}
    records.append({"pipeline": pid, "web_url": f"{BASE}/-/pipelines/{pid}", "report": report})
records.reverse()
with open("src/demo/data/week-tests.json", "w") as f:
    json.dump(records, f, indent=1)
    f.write("\n")
print(f"{len(records)} pipelines, {nth} with failing tests")
