#!/usr/bin/env python3
"""How much `confidence` means, on the labelled corpus (not part of cargo test).

Usage: tests/eval/calibration.py BINARY [CORPUS_DIR]   (default ../shared/corpus)

For each confidence band: how many logs, how often the category agrees with
the corpus' category (machine-assigned "silver" labels, ~67 % accurate by the
corpus' own audit, and with a `script_error` class RunnerIQ does not have), and
how often a human-labelled failure line is among the first 5 evidence lines
(the scorer's hit@5). The LLM is switched off: this measures the rules alone.
"""
import json, os, subprocess, sys
from importlib.machinery import SourceFileLoader

binary = sys.argv[1]
corpus = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../../shared/corpus")
score = SourceFileLoader("score", os.path.join(corpus, "score")).load_module()
recs = [json.loads(l) for l in open(os.path.join(corpus, "dev", "labels.jsonl"), encoding="utf-8")]
paths = [os.path.join(corpus, "dev", os.path.basename(r["file"])) for r in recs]
env = dict(os.environ, RUNNERIQ_LLM="off")
out = {}
for i in range(0, len(paths), 60):
    res = subprocess.run([binary, "classify", "--format", "json", *paths[i:i + 60]],
                         capture_output=True, text=True, env=env).stdout
    for line in res.splitlines():
        d = json.loads(line)
        out[os.path.normpath(d["file"])] = d
rows = []
for r, p in zip(recs, paths):
    d = out[os.path.normpath(p)]
    lines = open(p, encoding="utf-8", errors="replace").read().split("\n")
    nums, texts = score.gold_lines(r, lines)
    hit5 = any(e["line"] in nums or score.norm(e["text"]) in texts for e in d["evidence"][:5])
    rows.append((d["confidence"], d["category"], r["category"], hit5))
print(f"{'confidence':<12} {'logs':>5} {'category = silver':>18} {'hit@5':>7}")
for lo, hi, name in [(0.8, 1.01, ">= 0.8"), (0.6, 0.8, "0.6-0.8"), (0.4, 0.6, "0.4-0.6"),
                     (1e-9, 0.4, "< 0.4"), (0, 1e-9, "unknown (0)")]:
    band = [x for x in rows if lo <= x[0] < hi]
    if not band:
        continue
    agree = sum(1 for x in band if x[1] == x[2]) / len(band)
    h5 = sum(1 for x in band if x[3]) / len(band)
    print(f"{name:<12} {len(band):>5} {agree:>18.2f} {h5:>7.2f}")
scored = [x for x in rows if x[2] != "script_error"]
hi = [x for x in scored if x[0] >= 0.8]
print(f"confidence >= 0.8 without the corpus' script_error class: {len(hi)} logs, "
      f"category agrees {sum(1 for x in hi if x[1] == x[2]) / max(len(hi), 1):.2f}")
