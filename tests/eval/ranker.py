#!/usr/bin/env python3
"""Train and validate RunnerIQ's line ranker (src/classify/ranker.json).

    tests/eval/ranker.py target/release/runneriq [--corpus ../shared/corpus] [--write]

1. Runs `runneriq classify --format json --dump-candidates` over the labelled
   dev logs: every candidate line of every log with its feature vector.
2. Marks a candidate positive when it is a human-labelled failure line, by
   the corpus scorer's own rule (`score`'s gold_lines: line number or
   normalised text).
3. Leave-project-out: for each of the 5 folds of dev/folds.json, trains on the
   other four and measures hit@1 / hit@5 on it (candidates sorted by the
   model, identical texts shown once, as the binary does); writes that
   fold's model to /tmp/runneriq-ranker-fold{K}.json, so that
   `RUNNERIQ_RANKER=/tmp/runneriq-ranker-fold{K}.json score BINARY --fold K`
   measures it with the real binary.
4. With --write, trains on all five folds and writes src/classify/ranker.json.

Needs scikit-learn (`pip install scikit-learn`). Not part of `cargo test`:
the corpus is not in the repository, and only the learned numbers are.
"""
import argparse
import concurrent.futures as cf
import datetime
import importlib.machinery
import json
import os
import subprocess
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def load_scorer(corpus):
    loader = importlib.machinery.SourceFileLoader("corpus_score", os.path.join(corpus, "score"))
    return loader.load_module()


def dump(binary, files):
    env = dict(os.environ, RUNNERIQ_LLM="off")
    env.pop("RUNNERIQ_RANKER", None)
    out = subprocess.run([binary, "classify", "--format", "json", "--dump-candidates",
                          "--max-evidence", "5", *files],
                         capture_output=True, text=True, errors="replace", env=env, check=False)
    res = {}
    for line in out.stdout.splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        res[os.path.normpath(obj["file"])] = obj
    return res


def dataset(binary, corpus, scorer):
    dev = os.path.join(corpus, "dev")
    recs = [json.loads(l) for l in open(os.path.join(dev, "labels.jsonl"), encoding="utf-8")]
    fold_of = json.load(open(os.path.join(dev, "folds.json"), encoding="utf-8"))["folds"]
    paths = [os.path.normpath(os.path.join(dev, os.path.basename(r["file"]))) for r in recs]
    results = {}
    batches = [paths[i:i + 40] for i in range(0, len(paths), 40)]
    with cf.ThreadPoolExecutor(2) as ex:
        for res in ex.map(lambda b: dump(binary, b), batches):
            results.update(res)
    logs = []
    for rec, path in zip(recs, paths):
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().split("\n")
        nums, texts = scorer.gold_lines(rec, lines)
        obj = results.get(path) or {}
        cands = obj.get("ranked") or []
        if not cands:
            x = np.zeros((0, 0))
            y = np.zeros(0, dtype=bool)
        else:
            x = np.array([c["x"] for c in cands], dtype=float)
            y = np.array([c["line"] in nums or scorer.norm(c["text"]) in texts for c in cands])
        logs.append({
            "id": rec["id"],
            "source": rec["id"].split("-", 1)[0],
            "fold": fold_of.get(rec.get("project")),
            "x": x,
            "y": y,
            "texts": [c["text"] for c in cands],
            "lines": [c["line"] for c in cands],
            "context": [c["context"] for c in cands],
        })
    return logs


# Index of the in_category feature (ranker.rs FEATURES).
IN_CATEGORY = 1
# Features whose weight may not be positive (see fit); indices into FEATURES.
NONPOSITIVE_NAMES = ["frame", "progress", "warning", "summary", "runner_footer"]
NONPOSITIVE = []
# Lines of context around an evidence line (CONTEXT_LINES in classify/mod.rs).
CONTEXT_GAP = 2


def rank_hits(log, w, b):
    """hit@1, hit@5 of one log ranked by (w, b), selected as the binary does:
    identical texts once, and no line within the context of one shown."""
    if len(log["y"]) == 0:
        return False, False
    s = log["x"] @ w + b
    if not any(log["context"]):
        # Only the log's last lines: the closest to the failure first.
        order = sorted(range(len(s)), key=lambda i: -log["lines"][i])
    else:
        # The verdict's own lines first, then the model's order.
        order = sorted(range(len(s)), key=lambda i: (-log["x"][i][IN_CATEGORY], -s[i],
                                                      log["lines"][i]))
    shown, seen, near = [], set(), []
    for i in order:
        line = log["lines"][i]
        if log["texts"][i] in seen or any(abs(line - n) <= CONTEXT_GAP for n in near):
            continue
        seen.add(log["texts"][i])
        if log["context"][i]:
            near.append(line)
        shown.append(bool(log["y"][i]))
        if len(shown) == 5:
            break
    return bool(shown and shown[0]), any(shown)


def fit(logs, c_reg):
    """Logistic regression on pairs (a labelled line vs another candidate of
    the same log): it learns to order lines within a log, which is what the
    note needs, rather than absolute probabilities across logs. Each source
    of logs (LogChunks, LogSage, CiDiff, pytorch) weighs the same, so the
    model does not learn one dataset's way of labelling."""
    xs, ys, ws = [], [], []
    rng = np.random.default_rng(7)
    per_source = {}
    for log in logs:
        per_source[log["source"]] = per_source.get(log["source"], 0) + 1
    for log in logs:
        pos = np.flatnonzero(log["y"])
        neg = np.flatnonzero(~log["y"])
        if len(pos) == 0 or len(neg) == 0:
            continue
        # Every log weighs the same, whatever its number of candidates.
        k = min(len(pos) * len(neg), 60)
        pi = rng.choice(pos, k)
        ni = rng.choice(neg, k)
        d = log["x"][pi] - log["x"][ni]
        wt = np.full(k, 1.0 / (k * per_source[log["source"]]))
        xs.append(d)
        ys.append(np.ones(k))
        ws.append(wt)
        xs.append(-d)
        ys.append(np.zeros(k))
        ws.append(wt)
    x = np.vstack(xs)
    y = np.concatenate(ys)
    w = np.concatenate(ws)
    # Domain knowledge the labels cannot teach: the labelled chunks of some
    # datasets include whole stack traces, progress and summary lines around
    # the failure, but those shapes are context, never the cause. Their
    # weights may not be positive: a feature that comes out positive is
    # dropped (weight 0) and the rest refitted.
    keep = np.ones(x.shape[1], dtype=bool)
    while True:
        m = LogisticRegression(C=c_reg, fit_intercept=False, max_iter=5000)
        m.fit(x[:, keep], y, sample_weight=w / w.mean())
        coef = np.zeros(x.shape[1])
        coef[keep] = m.coef_[0]
        bad = [i for i in NONPOSITIVE if keep[i] and coef[i] > 0]
        if not bad:
            return coef, 0.0
        keep[bad] = False


def write_model(path, w, b, features, trained):
    with open(path, "w", encoding="utf-8") as f:
        json.dump({
            "trained": trained,
            "features": features,
            "weights": [round(float(v), 4) for v in w],
            "bias": round(float(b), 4),
        }, f, indent=1)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--corpus", default=os.path.join(ROOT, "..", "shared", "corpus"))
    ap.add_argument("--c", type=float, default=0.01, help="inverse regularisation strength")
    ap.add_argument("--write", action="store_true", help="write src/classify/ranker.json")
    a = ap.parse_args()
    scorer = load_scorer(a.corpus)
    features = json.load(open(os.path.join(ROOT, "src", "classify", "ranker.json")))["features"]
    NONPOSITIVE.extend(features.index(n) for n in NONPOSITIVE_NAMES)
    logs = dataset(a.binary, a.corpus, scorer)
    with_pos = sum(bool(l["y"].any()) for l in logs)
    print(f"{len(logs)} logs, {sum(len(l['y']) for l in logs)} candidates; "
          f"a labelled line among the candidates in {with_pos} logs ({with_pos / len(logs):.3f})")
    folds = sorted({l["fold"] for l in logs if l["fold"] is not None})
    t1 = t5 = n = 0
    for k in folds:
        train = [l for l in logs if l["fold"] != k]
        test = [l for l in logs if l["fold"] == k]
        w, b = fit(train, a.c)
        h = [rank_hits(l, w, b) for l in test]
        h1 = sum(x[0] for x in h)
        h5 = sum(x[1] for x in h)
        t1, t5, n = t1 + h1, t5 + h5, n + len(test)
        print(f"fold {k}: trained on {len(train)} logs, {len(test)} held out: "
              f"hit@1 {h1 / len(test):.3f}, hit@5 {h5 / len(test):.3f}")
        write_model(f"/tmp/runneriq-ranker-fold{k}.json", w, b, features,
                    f"folds {[f for f in folds if f != k]} only (evaluation)")
    print(f"all folds, each held out: hit@1 {t1 / n:.3f}, hit@5 {t5 / n:.3f}")
    w, b = fit(logs, a.c)
    print("weights (all folds):")
    for name, v in sorted(zip(features, w), key=lambda p: -abs(p[1])):
        print(f"  {name:15s} {v:+.3f}")
    if a.write:
        trained = (f"{datetime.date.today()}: pairwise logistic regression (C={a.c}) on "
                   f"{len(logs)} labelled dev logs of ../shared/corpus, all 5 leave-project-out "
                   f"folds; regenerate with tests/eval/ranker.py BINARY --write")
        write_model(os.path.join(ROOT, "src", "classify", "ranker.json"), w, b, features, trained)
        print("wrote src/classify/ranker.json")


if __name__ == "__main__":
    sys.exit(main())
