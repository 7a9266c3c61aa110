"""Continual pretraining on the paper's `ct` data, scored the honest way.

    python benchmarks/continual_ct.py [DIR]      # writes benchmarks/results/continual_ct.json

DIR defaults to ../shared/data/mixinglaws relative to the repository root (needs ct.csv and
valid_weights.csv); without it the benchmark prints "skipped" and exits 0.

Fit c + exp(b + k r) on the four grid runs (Pile share 0.125, 0.25, 0.375, 0.5) at step 10000, with the original
loss = valid_weight-weighted total over the 22 Pile domains and the new domain = python; predict the separately
trained run at r = 73/256 = 0.2852 (run 9); report the error and whether the predicted critical share lies on the
right side of 0.2852 given that run's measured outcome (its Pile loss is below the base model's, so the right
side is r* <= 0.2852). Compared with docs/paper-spec.md section 4: notebook r* = 0.28623, least-squares refit
c = 2.81034, k = -3.7407, b = -1.6936, r* = 0.28619. Also: the same at every step 5000..10000, and with the
joint (c, b, k) fit.

Length dependence (issue 15): the critical share drifts with the continual run's length, so each interval
holds for its own length only. Reported: run 9 against each length's interval (inside or not), the drift
(r* = a + b ln step over 5k..10k), the recommendation at 10k (observed) and at 20k (extrapolated: declined), and
a length backtest: the trend fitted on 5k..7k and on 5k..9k only, extrapolated to 10k, against the 10k answer.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mixlaw.continual import (  # noqa: E402
    continual_analysis,
    continual_recommendation,
    critical_share_by_length,
    data_at_step,
    prepare_continual,
)
from mixlaw.files import to_jsonable  # noqa: E402
from mixlaw.runs import read_runs  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "mixinglaws"
OUT = ROOT / "benchmarks" / "results" / "continual_ct.json"
PAPER = {
    "notebook_r_star": 0.28622540757637893,
    "refit": {"c": 2.81034, "k": -3.7407, "b": -1.6936, "r_star": 0.28619},
    "critical_run": {"pile": 2.87207, "base": 2.873368},
}


def main() -> int:
    data_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    if not (data_dir / "ct.csv").is_file() or not (data_dir / "valid_weights.csv").is_file():
        print(
            f"continual_ct: data folder {data_dir} not found (expected ct.csv and valid_weights.csv): skipped"
        )
        return 0
    t0 = time.time()
    table = read_runs(data_dir / "ct.csv")
    weights = str(data_dir / "valid_weights.csv")
    rows = {}
    for step in range(5000, 10001, 1000):
        data = prepare_continual(table, "base", "all", ["python"], weights, step=float(step))
        for c_init in ("correlation", "joint"):
            if c_init == "joint" and step != 10000:
                continue
            res = continual_analysis(
                data, holdout_runs=["9"], n_bootstrap=1000 if step == 10000 else 200, level=0.9, c_init=c_init
            )
            res.pop("curve")
            h = res["holdout"][0]
            rows[f"{c_init}@{step}"] = {
                "step": step,
                "c_init": c_init,
                "law": res["law"]["original"],
                "law_new": res["law"]["new"],
                "critical_share": res["critical"]["share"],
                "interval_90": res["critical"]["interval"],
                "noise": {k: res["noise"]["original"][k] for k in ("residual_sd", "checkpoint", "sd")},
                "heldout_run_9": {
                    "r": h["original_share"],
                    "pile_measured": h["original"]["measured"],
                    "pile_predicted": h["original"]["predicted"],
                    "pile_error": h["original"]["error"],
                    "python_error": h["new"]["error"],
                    "measured_margin_vs_base": h["measured_margin"],
                    "right_side": h["critical_share_on_right_side"],
                    "inside_interval": h["inside_interval"],
                    "bootstrap_p_right_side": h["bootstrap_share_on_right_side"],
                },
                "base_pile": res["base"]["original"],
            }
            if c_init == "correlation" and step == 10000:
                data10k, res10k = data, res
    main_row = rows["correlation@10000"]
    lengths = [float(x) for x in range(5000, 10001, 1000)]
    by_length, recommendations = {}, {}
    for target in (10000.0, 20000.0):
        res10k["by_length"] = critical_share_by_length(
            data10k, res10k, target, holdout_runs=["9"], n_bootstrap=200, lengths=lengths
        )
        recommendations[f"{target:g}"] = continual_recommendation(res10k)
        by_length[f"{target:g}"] = res10k["by_length"]["requested"]
    trend = res10k["by_length"]["trend"]
    backtest = {}
    for last in (7000, 9000):
        data_last = data_at_step(data10k, last)
        res_last = continual_analysis(data_last, holdout_runs=["9"], n_bootstrap=200)
        res_last.pop("curve")
        train = [x for x in lengths if x <= last]
        req = critical_share_by_length(
            data_last, res_last, 10000.0, holdout_runs=["9"], n_bootstrap=200, lengths=train
        )["requested"]
        lo, hi = req["interval"]
        truth = main_row["critical_share"]
        backtest[f"5000-{last}->10000"] = {
            "predicted_share": req["share"],
            "interval": req["interval"],
            "recommended_share": req["recommended_share"],
            "share_at_10000": truth,
            "inside": bool(lo <= truth <= (1 if hi is None else hi)),
            "point_error": req["share"] - truth,
            "run_9_inside": bool(lo <= main_row["heldout_run_9"]["r"] <= (1 if hi is None else hi)),
        }
    result = {
        "data": os.path.relpath(data_dir, ROOT),
        "paper": PAPER,
        "headline": main_row,
        "all": rows,
        "length": {
            "trend": trend,
            "run_9_by_length": {
                k: {
                    "critical_share": row["critical_share"],
                    "interval_90": row["interval_90"],
                    "run_9_inside": row["heldout_run_9"]["inside_interval"],
                    "right_side": row["heldout_run_9"]["right_side"],
                }
                for k, row in rows.items()
                if k.startswith("correlation@")
            },
            "requested": by_length,
            "recommendation": recommendations,
            "backtest": backtest,
        },
        "seconds": time.time() - t0,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(to_jsonable(result), indent=2) + "\n")
    h = main_row["heldout_run_9"]
    lo, hi = main_row["interval_90"]
    print(
        f"ct @10k: r* = {main_row['critical_share']:.5f} (90% [{lo:.4f}, {hi:.4f}]); law c={main_row['law']['c']:.5f} "
        f"k={main_row['law']['k']:.4f} b={main_row['law']['b']:.4f}"
    )
    print(
        f"run 9 (r = {h['r']:.5f}): Pile measured {h['pile_measured']:.5f}, predicted {h['pile_predicted']:.5f}, "
        f"error {h['pile_error']:+.5f}; measured margin vs base {h['measured_margin_vs_base']:+.5f} -> r* on the "
        f"{'right' if h['right_side'] else 'WRONG'} side (bootstrap P(right) = {h['bootstrap_p_right_side']:.3f})"
    )
    for key, row in rows.items():
        hh = row["heldout_run_9"]
        print(
            f"  {key:18s} r* = {row['critical_share']:.4f}  run-9 error {hh['pile_error']:+.5f}  "
            f"right side: {hh['right_side']}"
        )
    print(f"drift: {trend['per_doubling']:+.4f} per doubling of the length (5k..10k)")
    for key, row in result["length"]["run_9_by_length"].items():
        iv = row["interval_90"]
        print(f"  {key:18s} 90% [{iv[0]:.4f}, {iv[1]:.4f}]  run 9 (0.2852) inside: {row['run_9_inside']}")
    for key, rec in recommendations.items():
        print(f"  at {key} steps: {rec['verdict']} (share {rec['share']}) -- {rec['reason']}")
    for key, row in backtest.items():
        print(
            f"  backtest {key}: predicted {row['predicted_share']:.4f} [{row['interval'][0]:.4f}, "
            f"{row['interval'][1]:.4f}] vs {row['share_at_10000']:.4f} at 10k: inside {row['inside']}"
        )
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
