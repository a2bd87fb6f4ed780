#!/usr/bin/env python3
"""Train LightGBM on the feature matrices cashmatch-train exported, with settings comparable to
cashmatch's own GBDT, and measure both boosters the same way on the same holdout.

Usage: python3 training/lightgbm_compare.py DIR

DIR holds features_train.parquet, features_threshold.parquet, features_holdout.parquet and
compare_params.json, written by `cashmatch-train train --export-features DIR`. Each booster's
threshold is chosen on the threshold slice and judged on the holdout, never on the rows that
chose it. Prints a table and writes DIR/lightgbm_compare.json.
Installs its own dependencies (lightgbm pandas pyarrow scikit-learn) with pip when missing.
"""

import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

DEPS = {"lightgbm": "lightgbm", "pandas": "pandas", "pyarrow": "pyarrow", "sklearn": "scikit-learn", "scipy": "scipy"}


def ensure_deps():
    missing = [pkg for mod, pkg in DEPS.items() if importlib.util.find_spec(mod) is None]
    if missing:
        print(f"installing {' '.join(missing)}", file=sys.stderr)
        subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *missing])


def clopper_pearson_lower(successes, n, confidence):
    from scipy.stats import beta

    if successes == 0 or n == 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence, successes, n - successes + 1))


def labels_needed_zero(target, confidence):
    import math

    return max(1, math.ceil(math.log(1.0 - confidence) / math.log(target)))


def tops(df, prob_col):
    """Each payment's best candidate: (p_best * (1 - p_rival), right)."""
    import numpy as np

    out = []
    for _, g in df.groupby("payment", sort=True):
        p = g[prob_col].to_numpy()
        y = g["label"].to_numpy()
        order = np.argsort(-p, kind="stable")
        best = order[0]
        rival = p[order[1]] if len(order) > 1 else 0.0
        out.append((p[best] * (1.0 - rival), bool(y[best] > 0.5)))
    return out


def choose_threshold(df, prob_col, target, confidence):
    """The loosest decision score whose Clopper-Pearson lower bound stays at or above the target,
    scanning from the top and stopping at the first failure (as cashmatch's model::threshold
    does), on the threshold slice. None when nothing is certified."""
    items = sorted(tops(df, prob_col), key=lambda t: -t[0])
    min_count = labels_needed_zero(target, confidence)
    chosen = None
    count = errors = 0
    i = 0
    while i < len(items):
        t = items[i][0]
        while i < len(items) and items[i][0] == t:
            count += 1
            errors += 0 if items[i][1] else 1
            i += 1
        if count < min_count:
            continue
        if clopper_pearson_lower(count - errors, count, confidence) >= target:
            chosen = t
        else:
            break
    return chosen


def judge_at(df, prob_col, threshold, with_truth):
    """Touchless and precision on the holdout at a threshold chosen elsewhere."""
    auto = right = 0
    if threshold is not None:
        for score, ok in tops(df, prob_col):
            if score >= threshold:
                auto += 1
                right += 1 if ok else 0
    return {
        "touchless": right / max(with_truth, 1),
        "precision": right / auto if auto else 0.0,
        "n_auto": auto,
        "threshold": threshold,
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ensure_deps()
    import lightgbm as lgb
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    d = Path(sys.argv[1])
    cfg = json.loads((d / "compare_params.json").read_text())
    params = cfg["params"]
    train = pd.read_parquet(d / "features_train.parquet")
    hold = pd.read_parquet(d / "features_holdout.parquet")
    thr = pd.read_parquet(d / "features_threshold.parquet")
    features = [c for c in train.columns if c not in ("payment", "label", "split")]
    fit_rows = train[train["split"] == 0]
    valid_rows = train[train["split"] == 1]

    lgb_params = {
        "objective": "binary",
        "learning_rate": params["learning_rate"],
        "num_leaves": params["max_leaves"],
        "max_depth": params["max_depth"],
        "min_data_in_leaf": params["min_samples_leaf"],
        "min_sum_hessian_in_leaf": params["min_child_hessian"],
        "lambda_l2": params["lambda_l2"],
        "min_gain_to_split": params["min_split_gain"],
        "max_bin": params["max_bins"],
        "bagging_fraction": params["row_subsample"],
        "bagging_freq": 1 if params["row_subsample"] < 1.0 else 0,
        "feature_fraction": params["col_subsample"],
        "seed": params["seed"],
        "num_threads": 2,
        "deterministic": True,
        "verbose": -1,
    }
    dtrain = lgb.Dataset(fit_rows[features], label=fit_rows["label"], free_raw_data=False)
    callbacks = []
    valid_sets = []
    if len(valid_rows) and params.get("early_stopping_rounds"):
        valid_sets = [lgb.Dataset(valid_rows[features], label=valid_rows["label"], reference=dtrain)]
        callbacks.append(lgb.early_stopping(params["early_stopping_rounds"], verbose=False))
    t = time.perf_counter()
    booster = lgb.train(
        lgb_params,
        dtrain,
        num_boost_round=params["n_rounds"],
        valid_sets=valid_sets or None,
        callbacks=callbacks,
    )
    seconds = time.perf_counter() - t
    hold = hold.copy()
    thr = thr.copy()
    best = booster.best_iteration or None
    hold["lightgbm"] = booster.predict(hold[features], num_iteration=best)
    thr["lightgbm"] = booster.predict(thr[features], num_iteration=best)

    target, confidence = cfg["target_precision"], cfg["confidence"]
    with_truth = cfg["holdout_with_truth"]
    out = {
        "lightgbm_version": lgb.__version__,
        "train_rows": int(len(fit_rows)),
        "holdout_rows": int(len(hold)),
    }
    for name, col, secs, rounds in [
        ("ours", "ours", cfg["ours_fit_seconds"], cfg["ours_rounds"]),
        ("lightgbm", "lightgbm", seconds, booster.best_iteration or booster.current_iteration()),
    ]:
        fig = judge_at(hold, col, choose_threshold(thr, col, target, confidence), with_truth)
        fig["auc"] = float(roc_auc_score(hold["label"], hold[col]))
        fig["train_seconds"] = float(secs)
        fig["rounds"] = int(rounds)
        out[name] = fig
    (d / "lightgbm_compare.json").write_text(json.dumps(out, indent=2))
    print(f"{'booster':<16}{'AUC':>8}{'touchless':>12}{'precision':>12}{'auto':>8}{'seconds':>10}")
    for name in ("ours", "lightgbm"):
        f = out[name]
        print(
            f"{name:<16}{f['auc']:>8.4f}{100 * f['touchless']:>11.2f}%{100 * f['precision']:>11.3f}%"
            f"{f['n_auto']:>8}{f['train_seconds']:>10.1f}"
        )


if __name__ == "__main__":
    main()
