#!/usr/bin/env python3
"""Regenerates the embedded demo pipeline (src/demo/data) from real CI logs.

The traces are real failed CI logs (tests/fixtures/logs, BSD-3-Clause and
Apache-2.0, see NOTICE.md) wrapped the way gitlab-runner 18.7+ writes a job
trace: stage sections and a timestamp/stream prefix on every line. The job and
MR objects follow the shapes of the real API responses in
tests/fixtures/gitlab/api. Run from the repository root.
"""
import json, os

HERE = "src/demo/data"
LOGS = "tests/fixtures/logs"
BASE = "https://gitlab.example.com/acme/vision"
T0 = 1767261600  # 2026-01-01T10:00:00Z


def frame(body_lines, start, runner="18.7.0", exit_code=1):
    out, n = [], [0]

    def line(s, stream="00O"):
        n[0] += 1
        ts = start + n[0] // 20
        frac = n[0] % 1000000
        hh, mm, ss = (ts // 3600) % 24, (ts // 60) % 60, ts % 60
        out.append(f"2026-01-01T{hh:02d}:{mm:02d}:{ss:02d}.{frac:06d}Z {stream} {s}")

    line(f"\x1b[0KRunning with gitlab-runner {runner} (a1b2c3d4)\x1b[0;m")
    line(f"section_start:{start}:prepare_executor\r\x1b[0K\x1b[0K\x1b[36;1mPreparing the \"docker\" executor\x1b[0;m")
    line(f"section_end:{start + 4}:prepare_executor\r\x1b[0K")
    line(f"section_start:{start + 4}:get_sources\r\x1b[0K\x1b[0K\x1b[36;1mGetting source from Git repository\x1b[0;m")
    line(f"section_end:{start + 9}:get_sources\r\x1b[0K")
    line(f"section_start:{start + 9}:step_script\r\x1b[0K\x1b[0K\x1b[36;1mExecuting \"step_script\" stage of the job script\x1b[0;m")
    for l in body_lines:
        line(l, "01E")
    end = start + 9 + max(30, len(body_lines) // 3)
    line(f"section_end:{end}:step_script\r\x1b[0K")
    line(f"section_start:{end}:cleanup_file_variables\r\x1b[0K\x1b[0K\x1b[36;1mCleaning up project directory and file based variables\x1b[0;m")
    line(f"section_end:{end + 1}:cleanup_file_variables\r\x1b[0K")
    line(f"\x1b[31;1mERROR: Job failed: exit code {exit_code}\x1b[0;m")
    return "\n".join(out) + "\n"


def read(name):
    with open(os.path.join(LOGS, name), encoding="utf-8", errors="replace") as f:
        return f.read().split("\n")


def job(id, name, stage, status, *, failure_reason=None, allow_failure=False, minute=0, duration=120.0):
    created = f"2026-01-01T10:{minute:02d}:00.000Z"
    started = f"2026-01-01T10:{minute:02d}:12.000Z"
    return {
        "id": id, "name": name, "stage": stage, "status": status, "ref": "feature/profiler-parent-id",
        "tag": False, "allow_failure": allow_failure, "created_at": created, "started_at": started,
        "finished_at": f"2026-01-01T10:{minute + 2:02d}:12.000Z", "duration": duration, "queued_duration": 12.0,
        "failure_reason": failure_reason, "web_url": f"{BASE}/-/jobs/{id}", "tag_list": ["docker", "linux"],
        "runner": {"id": 12, "description": "shared-runner-linux-1", "active": True, "paused": False,
                   "is_shared": True, "runner_type": "instance_type", "name": "gitlab-runner", "online": True,
                   "status": "online"},
        "pipeline": {"id": 4242, "iid": 311, "project_id": 101, "ref": "feature/profiler-parent-id",
                     "sha": "7d3c9a1e5b2f4c6d8e0a1b2c3d4e5f6a7b8c9d0e", "status": "failed", "source": "merge_request_event",
                     "web_url": f"{BASE}/-/pipelines/4242"},
        "user": {"id": 7, "username": "ada", "name": "Ada Example", "state": "active"},
        "artifacts": [], "tag_list_extra": None,
    }


jobs = [
    job(90101, "build:linux", "build", "failed", failure_reason="script_failure", minute=1),
    job(90102, "lint", "test", "failed", failure_reason="script_failure", minute=1, duration=35.0),
    job(90103, "lint", "test", "success", minute=4, duration=33.0),
    job(90104, "test:distributed", "test", "failed", failure_reason="script_failure", minute=3, duration=330.0),
    job(90105, "deps:mirror", "prepare", "failed", failure_reason="script_failure", minute=0, duration=20.0),
    job(90106, "test:gpu", "test", "failed", failure_reason="runner_system_failure", minute=3, duration=5.0),
    job(90107, "image:nightly", "publish", "failed", failure_reason="script_failure", allow_failure=True, minute=5),
    job(90108, "docs", "build", "success", minute=1, duration=50.0),
]
for j in jobs:
    j.pop("tag_list_extra")

traces = {
    90101: frame(read("pt-compile_error.log"), T0 + 60),
    90102: frame(["$ ./tools/lint.sh", "Checking formatting...", "error: could not connect to the style server, retrying later",
                  "curl: (7) Failed to connect to lint.example.com port 443: Connection refused"], T0 + 60),
    90104: frame(read("pt-pytest_failure.log"), T0 + 180),
    90105: frame(read("cd-spork_441.log"), T0),
    90107: frame(read("pt-docker_manifest_unknown.log"), T0 + 300),
}
with open(os.path.join("tests/fixtures/gitlab/traces/failed_sections_only_exit_status_1.log"), "rb") as f:
    gpu = f.read()

os.makedirs(os.path.join(HERE, "traces"), exist_ok=True)
for jid, text in traces.items():
    with open(os.path.join(HERE, "traces", f"{jid}.log"), "w", encoding="utf-8") as f:
        f.write(text)
with open(os.path.join(HERE, "traces", "90106.log"), "wb") as f:
    f.write(gpu)

with open(os.path.join(HERE, "jobs.json"), "w") as f:
    json.dump(jobs, f, indent=1)
    f.write("\n")

diff = (
    "@@ -120,9 +120,12 @@ struct AddTensorboardFields : public MetadataBase {\n"
    "   void operator()(const ExtraFields<EventType::PyCall>& py_call) {\n"
    "     addMetadata(\"Python id\", std::to_string(py_call.id_));\n"
    "-    addMetadata(\"Python parent id\", std::to_string(py_call.parent_id_));\n"
    "+    if (auto parent_id = py_call.parent_id()) {\n"
    "+      this->addMetadata(fields::kPythonParentId, *parent_id);\n"
    "+    }\n"
    "   }\n"
)
diffs = [
    {"old_path": "torch/csrc/profiler/kineto_metadata.cpp", "new_path": "torch/csrc/profiler/kineto_metadata.cpp",
     "a_mode": "100644", "b_mode": "100644", "diff": diff, "new_file": False, "renamed_file": False,
     "deleted_file": False, "generated_file": False},
    {"old_path": "torch/csrc/profiler/fields.h", "new_path": "torch/csrc/profiler/fields.h",
     "a_mode": "100644", "b_mode": "100644",
     "diff": "@@ -10,3 +10,4 @@ namespace fields {\n constexpr auto kPythonId = \"Python id\";\n+constexpr auto kPythonParentId = \"Python parent id\";\n }\n",
     "new_file": False, "renamed_file": False, "deleted_file": False, "generated_file": False},
]
with open(os.path.join(HERE, "mr_diffs.json"), "w") as f:
    json.dump(diffs, f, indent=1)
    f.write("\n")
mr = {"id": 5501, "iid": 17, "project_id": 101, "title": "Record Python parent ids in profiler metadata",
      "state": "opened", "source_branch": "feature/profiler-parent-id", "target_branch": "main",
      "sha": "7d3c9a1e5b2f4c6d8e0a1b2c3d4e5f6a7b8c9d0e", "web_url": f"{BASE}/-/merge_requests/17",
      "author": {"id": 7, "username": "ada", "name": "Ada Example", "state": "active"}}
with open(os.path.join(HERE, "merge_request.json"), "w") as f:
    json.dump(mr, f, indent=1)
    f.write("\n")

# The target branch's side, for the noise triage: main's latest finished
# pipeline failed in deps:mirror with the same error (already failing
# upstream), and test:distributed failed 3 of its last 10 runs on main with
# the same error, passing in between (known flaky). Each history job names
# the demo trace whose log it had.
def main_job(id, name, stage, status, pipeline, minute):
    j = job(id, name, stage, status, failure_reason="script_failure" if status == "failed" else None, minute=minute)
    j.pop("tag_list_extra")
    j["ref"] = "main"
    j["pipeline"] = {"id": pipeline, "iid": pipeline - 3931, "project_id": 101, "ref": "main",
                     "sha": f"{pipeline:040x}", "status": "failed" if status == "failed" else "success",
                     "source": "push", "web_url": f"{BASE}/-/pipelines/{pipeline}"}
    return j


upstream = {"id": 4240, "iid": 309, "project_id": 101, "ref": "main", "sha": f"{4240:040x}", "status": "failed",
            "source": "push", "web_url": f"{BASE}/-/pipelines/4240"}
recent, trace_of = [], {}
for k, status in enumerate(["failed", "success", "success", "failed", "success", "success", "success", "failed",
                            "success", "success"]):
    pid = 4239 - k
    jid = 89990 - 10 * k
    recent.append(main_job(jid, "test:distributed", "test", status, pid, 3))
    recent.append(main_job(jid + 1, "build:linux", "build", "success", pid, 1))
    if status == "failed":
        trace_of[str(jid)] = 90104
upstream_jobs = [main_job(90001, "deps:mirror", "prepare", "failed", 4240, 0)]
trace_of["90001"] = 90105
history = {"upstream_pipeline": upstream, "upstream_failed_jobs": upstream_jobs, "recent_jobs": upstream_jobs + recent,
           "traces": trace_of}
with open(os.path.join(HERE, "history.json"), "w") as f:
    json.dump(history, f, indent=1)
    f.write("\n")
