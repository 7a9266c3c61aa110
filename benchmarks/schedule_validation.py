"""Validate the schedule law with the trainer at demo scale: does an optimized two-stage schedule beat the best
static mixture at equal tokens, and does the law predict the measured difference?

    nohup python benchmarks/schedule_validation.py > out/schedule-validation/log.txt 2>&1 &
    python benchmarks/schedule_validation.py --seeds 0,1,2 --workers 2

1. Fit runs: the 16 runs of mixlaw/configs/schedule-demo.yaml (6 static mixtures, 10 two-stage schedules;
   L2-D64, 320 steps of 16 x 128 tokens, seed 0) on a corpus where `math-prose` is scarce (~63k tokens).
2. Fit the schedule law (recency gamma per target) on the final checkpoint; objective = uniform mean loss over the
   four validation domains.
3. Optimize under availability (math-prose: at most one epoch, with a 2% margin for window rounding): the best
   static mixture (1 stage) and the best two-stage schedule (last-stage share searched on a grid).
4. Train both arms with `--seeds` (default 0,1,2) and compare: measured difference (static - schedule) with
   its standard error (Welch), the 2-sd criterion, and the law's predicted difference.
5. The decline rule (issue 15): the predicted gain over the best static mixture and over the baseline with an
   interval from the leave-one-schedule-out error (full refit, gamma re-profiled) and the seed noise (the fit
   runs are single-seed, so estimated from the fit's residuals, as `mixlaw schedule fit` does), and the verdict
   `mixlaw schedule optimize` gives; then whether the measured difference lies inside that interval.

Writes benchmarks/results/schedule_validation.json. Runs resume: rerunning skips finished runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixlaw.files import to_jsonable  # noqa: E402
from mixlaw.runs import read_runs  # noqa: E402
from mixlaw.schedule import (  # noqa: E402
    Schedule,
    fit_schedule_law,
    leave_one_out,
    optimize_schedule,
    prepare_schedules,
    schedule_recommendation,
    seed_noise,
)
from mixlaw.train.corpus import column_name  # noqa: E402
from mixlaw.train.sweep import LocalExecutor, parse_sweep_config, prepare_sweep, run_sweep  # noqa: E402

CONFIG = REPO / "mixlaw" / "configs" / "schedule-demo.yaml"
RESULT = REPO / "benchmarks" / "results" / "schedule_validation.json"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _clean(mix: dict[str, float]) -> dict[str, float]:
    """Round to 6 decimals, drop zeros, and put the rounding remainder on the largest entry (sums to 1)."""
    out = {d: round(float(v), 6) for d, v in mix.items() if v > 5e-7}
    top = max(out, key=out.get)
    out[top] = round(out[top] + 1 - sum(out.values()), 9)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "out" / "schedule-validation"))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--margin", type=float, default=0.98, help="use this share of the scarce domain's tokens")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    raw = yaml.safe_load(CONFIG.read_text())
    t0 = time.time()

    # 1. fit runs
    cfg = parse_sweep_config(raw, str(CONFIG), base_dir=CONFIG.parent)
    corpus, runs = prepare_sweep(cfg)
    log(f"fit sweep: {len(runs)} runs -> {out / 'fit'}")
    ex = LocalExecutor(workers=args.workers)
    try:
        run_sweep(runs, out / "fit", executor=ex, progress=False)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)

    # 2. law
    table = read_runs(out / "fit" / "runs.csv")
    data = prepare_schedules(table)
    fitted = fit_schedule_law(data)
    law = fitted.law
    log(f"law: gamma = {law.params_['gamma'][0]:.3f}, rmse {[round(x, 4) for x in law.summary_['rmse']]}")
    # leave-one-schedule-out check of the law on the fit runs (total loss): full refit, and the fast
    # fixed-gamma variant `mixlaw schedule fit` stores by default (to see how optimistic it is)
    loo_full = leave_one_out(data, fitted, "full")
    loo_fixed = leave_one_out(data, fitted, "fixed-gamma")
    loo = loo_full["errors_total"]
    seed = seed_noise(data, fitted)
    fitted.info["noise"] = {"loo": loo_full, "seed_sd": seed}
    log(
        f"law leave-one-out on the total: full MAE {loo_full['mae_total']:.4f} RMSE {loo_full['rmse_total']:.4f}; "
        f"fixed-gamma RMSE {loo_fixed['rmse_total']:.4f}; seed sd {seed['value']:.4f} ({seed['source']})"
    )

    # 3. optimize under availability
    steps = cfg.steps[0]
    tokens = steps * cfg.settings.batch_size * cfg.settings.seq_len
    counts = corpus.token_counts("train")
    scarce = "math-prose"
    available = {column_name(scarce): counts[scarce] * args.margin}
    static = optimize_schedule(fitted, 1, available=available, tokens=tokens, max_epochs=1.0)
    staged = optimize_schedule(fitted, 2, available=available, tokens=tokens, max_epochs=1.0)
    log(f"static optimum: {static['schedule']} predicted {static['predicted']['total']:.4f}")
    log(f"schedule optimum: {staged['schedule']} predicted {staged['predicted']['total']:.4f}")
    honesty = schedule_recommendation(fitted, staged, static)
    rec = honesty["recommendation"]
    log(f"recommendation: {rec['verdict']}. {rec['reason']}")
    names = {column_name(d): d for d in cfg.train_domains}

    def stages_of(result: dict) -> list[dict]:
        return [
            {
                "share": round(st["share"], 6),
                "mixture": _clean({names[d]: v for d, v in st["mixture"].items()}),
            }
            for st in result["schedule"]
        ]

    st_static, st_staged = stages_of(static), stages_of(staged)
    shares = [s["share"] for s in st_staged]
    shares[-1] = round(1 - sum(shares[:-1]), 6)
    for s, a in zip(st_staged, shares):
        s["share"] = a

    # 4. validation runs
    vraw = {k: v for k, v in raw.items() if k not in ("mixtures", "schedules")}
    vraw["mixtures"] = [st_static[0]["mixture"]]
    vraw["schedules"] = [st_staged]
    vraw["seeds"] = seeds
    vcfg = parse_sweep_config(vraw, "validation", base_dir=CONFIG.parent)
    _, vruns = prepare_sweep(vcfg)
    log(f"validation sweep: {len(vruns)} runs (2 arms x {len(seeds)} seeds) -> {out / 'validate'}")
    ex = LocalExecutor(workers=args.workers)
    try:
        run_sweep(vruns, out / "validate", executor=ex, progress=False)
    finally:
        ex.shutdown(wait=True, cancel_futures=True)
    vtable = read_runs(out / "validate" / "runs.csv")
    vdata = prepare_schedules(vtable)
    arm = np.array([len(s.shares) for s in vdata.schedules])
    y_static, y_staged = vdata.total[arm == 1], vdata.total[arm == 2]
    diff = float(y_static.mean() - y_staged.mean())
    se = float(np.sqrt(y_static.var(ddof=1) / len(y_static) + y_staged.var(ddof=1) / len(y_staged)))
    exact = [
        Schedule(np.array([1.0]), vdata.schedules[int(np.flatnonzero(arm == 1)[0])].mixtures),
        vdata.schedules[int(np.flatnonzero(arm == 2)[0])],
    ]
    pred = fitted.predict(exact)
    pred_diff = float(pred["total"][0] - pred["total"][1])
    per_domain = {}
    for i, t in enumerate(vdata.targets):
        a, b = vdata.Y[arm == 1, i], vdata.Y[arm == 2, i]
        per_domain[t] = {
            "static_mean": float(a.mean()),
            "schedule_mean": float(b.mean()),
            "measured_diff": float(a.mean() - b.mean()),
            "predicted_diff": float(pred[t][0] - pred[t][1]),
        }
    epochs_cols = [c for c in vtable.frame.columns if c.startswith("epochs_")]
    last = vtable.frame[vtable.frame["step"] == vtable.frame["step"].max()]
    epochs = last.groupby("run")[epochs_cols].max().max().to_dict()
    result = {
        "setup": {
            "config": str(CONFIG.relative_to(REPO)),
            "model": "L2-D64",
            "steps": steps,
            "tokens": tokens,
            "available": available,
            "max_epochs": 1.0,
            "seeds": seeds,
            "objective": "uniform mean loss, 4 domains",
            "fit_runs": len(data.schedules),
            "runs": os.path.relpath(out, REPO),
        },
        "law": {
            "gamma": law.params_["gamma"][0],
            "rmse": law.summary_["rmse"],
            "loo_mae_total": float(np.mean(np.abs(loo))),
            "loo_errors_total": loo,
            "loo_rmse_total": loo_full["rmse_total"],
            "loo_fixed_gamma": {k: loo_fixed[k] for k in ("rmse_total", "mae_total")},
            "seed_sd": seed,
        },
        "static_optimum": {
            "stages": st_static,
            "predicted_total": static["predicted"]["total"],
            "binding": static["constraints"]["binding"],
        },
        "schedule_optimum": {
            "stages": st_staged,
            "predicted_total": staged["predicted"]["total"],
            "shares_tried": staged["shares_tried"],
            "binding": staged["constraints"]["binding"],
        },
        "measured": {
            "static": y_static.tolist(),
            "schedule": y_staged.tolist(),
            "static_mean": float(y_static.mean()),
            "static_sd": float(y_static.std(ddof=1)),
            "schedule_mean": float(y_staged.mean()),
            "schedule_sd": float(y_staged.std(ddof=1)),
            "diff_static_minus_schedule": diff,
            "diff_se": se,
            "schedule_better_beyond_2se": bool(diff > 2 * se),
            "max_epochs_used": epochs,
        },
        "predicted": {
            "static_total": float(pred["total"][0]),
            "schedule_total": float(pred["total"][1]),
            "diff_static_minus_schedule": pred_diff,
            "diff_error": pred_diff - diff,
            "measured_diff_within_2se_of_prediction": bool(abs(pred_diff - diff) <= 2 * se),
        },
        "gain": honesty["gain"],
        "recommendation": rec,
        "measured_inside_gain_interval": bool(
            honesty["gain"]["over_static"]["lo"] <= diff <= honesty["gain"]["over_static"]["hi"]
        ),
        "per_domain": per_domain,
        "seconds": time.time() - t0,
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(to_jsonable(result), indent=2) + "\n")
    log(
        f"measured: static {y_static.mean():.4f} +- {y_static.std(ddof=1):.4f}, schedule {y_staged.mean():.4f} "
        f"+- {y_staged.std(ddof=1):.4f}; diff {diff:+.4f} (se {se:.4f}); predicted diff {pred_diff:+.4f}"
    )
    g = honesty["gain"]["over_static"]
    log(
        f"claimed gain over the best static {g['value']:+.4f}, 90% [{g['lo']:+.4f}, {g['hi']:+.4f}], "
        f"P(beats) {g['p_beats_baseline']:.2f} -> {rec['verdict']}; measured {diff:+.4f} inside: "
        f"{result['measured_inside_gain_interval']}"
    )
    log(f"wrote {RESULT.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
