#!/usr/bin/env python3
"""Which rules earn their place: each rule of the built-in catalog disabled in
turn, the dev corpus scored per leave-project-out fold, the change printed.

    python3 tests/eval/ablate_rules.py target/release/runneriq [--jobs N] [--only ID,ID]

A rule whose removal lowers no fold's hit@1 or hit@5 and changes no verdict's
category on the logs it fires on adds nothing the line model doesn't already
find there. A rule that fires on no dev log can't be judged here (GitLab runner
facts, tools absent from dev): it is listed as such, never as removable.
Not part of `cargo test`: it needs ../shared/corpus (research data).
"""
import argparse, concurrent.futures as cf, json, os, re, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SCORE = os.path.join(ROOT, "..", "shared", "corpus", "score")
DEV = os.path.join(ROOT, "..", "shared", "corpus", "dev")
FOLD = re.compile(r"^fold (\d): \d+ logs, hit@1 ([\d.]+), hit@5 ([\d.]+)")


def score(binary, rules_file):
    env = dict(os.environ, RUNNERIQ_LLM="off")
    if rules_file:
        env["RUNNERIQ_RULES"] = rules_file
    out = subprocess.run([SCORE, binary, "--by-fold", "--jobs", "1"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return {int(m[1]): (float(m[2]), float(m[3])) for m in map(FOLD.match, out.splitlines()) if m}


def verdicts(binary, rules_file, logs):
    env = dict(os.environ, RUNNERIQ_LLM="off")
    if rules_file:
        env["RUNNERIQ_RULES"] = rules_file
    out = subprocess.run([binary, "classify", "--format", "json", *logs], env=env,
                         capture_output=True, text=True).stdout
    return {(v := json.loads(l))["file"]: v.get("category") for l in out.splitlines() if l.strip()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", default="")
    a = ap.parse_args()
    binary = os.path.abspath(a.binary)
    catalog = subprocess.run([binary, "classify", "--print-rules"],
                             capture_output=True, text=True, check=True).stdout
    # The rules' ids, not the categories' (both are `  - id:` lines).
    ids = re.findall(r"^  - id: (\S+)$", catalog[catalog.index("\nrules:"):], re.M)
    if a.only:
        ids = [i for i in ids if i in a.only.split(",")]
    logs = sorted(os.path.join(DEV, f) for f in os.listdir(DEV) if f.endswith(".log"))
    base = score(binary, None)
    base_v = verdicts(binary, None, logs)
    # Where each rule fires: the rule ids of every log's evidence.
    fired = {}
    out = subprocess.run([binary, "classify", "--format", "json", "--max-evidence", "50", *logs],
                         env=dict(os.environ, RUNNERIQ_LLM="off"), capture_output=True, text=True).stdout
    for l in out.splitlines():
        v = json.loads(l)
        for e in v.get("evidence", []):
            if e.get("rule"):
                fired.setdefault(e["rule"], set()).add(v["file"])
    tmp = tempfile.mkdtemp()

    def one(rid):
        path = os.path.join(tmp, rid + ".yml")
        with open(path, "w") as f:
            f.write(f"rules:\n  - id: {rid}\n    disabled: true\n")
        if rid not in fired:
            return rid, None, 0
        s = score(binary, path)
        v = verdicts(binary, path, sorted(fired[rid]))
        changed = sum(1 for f, c in v.items() if base_v.get(f) != c)
        return rid, s, changed

    print("base: " + "  ".join(f"f{k} {h1:.3f}/{h5:.3f}" for k, (h1, h5) in sorted(base.items())))
    rows = []
    with cf.ThreadPoolExecutor(a.jobs) as ex:
        for rid, s, changed in ex.map(one, ids):
            if s is None:
                rows.append((rid, "fires on no dev log: not judged here"))
                continue
            d = {k: (s[k][0] - base[k][0], s[k][1] - base[k][1]) for k in base}
            worse = any(x < -1e-9 or y < -1e-9 for x, y in d.values())
            verdict = "keep" if worse or changed else "removable"
            rows.append((rid, f"{verdict:<9} fires in {len(fired[rid]):3d} logs, categories changed {changed:3d}; "
                              + " ".join(f"f{k} {x:+.3f}/{y:+.3f}" for k, (x, y) in sorted(d.items()))))
    for rid, text in rows:
        print(f"{rid:<36} {text}")


if __name__ == "__main__":
    main()
