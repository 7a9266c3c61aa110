"""Calibration check of `mixlaw.uncertainty`: leave-one-mixture-out 90% prediction intervals.

For every model size of 5Mix and of RedPajama (step 30000, Pile-category groups + total), each mixture is
held out in turn, a bootstrap ensemble is fitted on the others (noise from checkpoints, estimated once per
size on all runs), and the held-out losses are checked against the interval. Coverage is pooled over sizes,
mixtures and outputs (5 groups + total) and reported with a Wilson 95% binomial interval, over all intervals
and, conservatively, with n = held-out (size, mixture) cases (the outputs of one case are correlated).

    python benchmarks/calibration.py                          # -> benchmarks/results/calibration.json
    python benchmarks/calibration.py --law dml --bootstrap 30 --datasets 5mix

Needs the shared data (../shared/data/mixinglaws or --data); says so and exits 0 when it is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np

from mixlaw.files import to_jsonable
from mixlaw.fitted import prepare
from mixlaw.runs import RunsTable, read_table, validate_runs
from mixlaw.uncertainty import bootstrap_law, estimate_noise

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mixinglaws"
FILES = {"5mix": "5mix.csv", "redpajama": "redpajama.csv"}


def load(data_dir: Path, name: str) -> RunsTable:
    """A family's runs without the special runs (index > 900, off the design grid)."""
    frame = read_table(data_dir / FILES[name])
    frame = frame[frame["run"].astype(int) < 900].reset_index(drop=True)
    return RunsTable(validate_runs(frame, str(data_dir / FILES[name])), str(data_dir / FILES[name]))


def wilson(k: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k / n."""
    if n == 0:
        return (float("nan"), float("nan"))
    p = k / n
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (center - half, center + half)


def loo_intervals(
    table: RunsTable,
    model: str,
    weights: Path,
    law: str,
    n_bootstrap: int,
    level: float,
    step: int,
    seed: int,
    calibrate: str,
) -> dict:
    data = prepare(table, model=model, step=step, valid_weights=str(weights), group="pile_category")
    names = list(data.targets) + ["total"]
    noise = estimate_noise(data, names, table)
    ids = data.mixture_id
    hits, widths, errors = {n: [] for n in names}, {n: [] for n in names}, {n: [] for n in names}
    raw_hits = {n: [] for n in names}
    for m in np.unique(ids):
        test = ids == m
        ens = bootstrap_law(data.subset(~test), law, n_bootstrap=n_bootstrap, seed=seed, noise=noise)
        truth = {"total": data.total[test], **{t: data.Y[test, j] for j, t in enumerate(data.targets)}}
        iv = ens.interval(data.X[test], level, calibrate)
        raw = ens.interval(data.X[test], level, "none")
        for n in names:
            y = truth[n]
            hits[n] += ((iv[n]["lo"] <= y) & (y <= iv[n]["hi"])).tolist()
            raw_hits[n] += ((raw[n]["lo"] <= y) & (y <= raw[n]["hi"])).tolist()
            widths[n] += (iv[n]["hi"] - iv[n]["lo"]).tolist()
            errors[n] += np.abs(iv[n]["pred"] - y).tolist()
    return {
        "model": model,
        "n_mixtures": int(len(np.unique(ids))),
        "noise_source": noise["source"],
        "noise_sd": noise["sd"],
        "hits": hits,
        "raw_hits": raw_hits,
        "widths": widths,
        "errors": errors,
    }


def summarize(cases: list[dict], level: float) -> dict:
    hits = [h for c in cases for v in c["hits"].values() for h in v]
    raw = [h for c in cases for v in c["raw_hits"].values() for h in v]
    n_cases = sum(c["n_mixtures"] for c in cases)
    k = int(np.sum(hits))
    cov = k / len(hits)
    return {
        "coverage": cov,
        "n_intervals": len(hits),
        "ci95": wilson(k, len(hits)),
        "ci95_conservative": wilson(round(cov * n_cases), n_cases),
        "n_cases": n_cases,
        "raw_coverage": float(np.mean(raw)),
        "nominal": level,
        "per_size": {
            c["model"]: {
                "coverage": float(np.mean([h for v in c["hits"].values() for h in v])),
                "raw_coverage": float(np.mean([h for v in c["raw_hits"].values() for h in v])),
                "median_width_total": float(np.median(c["widths"]["total"])),
                "mae_total": float(np.mean(c["errors"]["total"])),
                "noise": c["noise_source"],
                "noise_sd_total": c["noise_sd"].get("total"),
            }
            for c in cases
        },
        "per_output": {n: float(np.mean([h for c in cases for h in c["hits"][n]])) for n in cases[0]["hits"]},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--datasets", default="5mix,redpajama")
    p.add_argument("--law", default="ridge-rlogr")
    p.add_argument("--bootstrap", type=int, default=30)
    p.add_argument("--level", type=float, default=0.9)
    p.add_argument("--step", type=int, default=30000)
    p.add_argument("--calibrate", default="both", choices=["both", "widen", "none"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "calibration.json")
    args = p.parse_args(argv)
    if not (args.data / "5mix.csv").exists():
        print(f"calibration: shared data not found at {args.data}; skipping (pass --data DIR)")
        return 0
    logging.disable(logging.WARNING)
    result = {
        "law": args.law,
        "bootstrap": args.bootstrap,
        "level": args.level,
        "step": args.step,
        "calibrate": args.calibrate,
        "seed": args.seed,
        "datasets": {},
    }
    started = time.perf_counter()
    for name in args.datasets.split(","):
        table = load(args.data, name)
        cases = []
        for model in sorted(table.frame["model"].unique(), key=lambda m: float(m.rstrip("MB"))):
            t0 = time.perf_counter()
            cases.append(
                loo_intervals(
                    table,
                    model,
                    args.data / "valid_weights.csv",
                    args.law,
                    args.bootstrap,
                    args.level,
                    args.step,
                    args.seed,
                    args.calibrate,
                )
            )
            s = summarize([cases[-1]], args.level)
            print(
                f"{name} {model}: coverage {s['coverage']:.3f} (raw {s['raw_coverage']:.3f}) over "
                f"{s['n_intervals']} intervals, median width(total) {s['per_size'][model]['median_width_total']:.4f}, "
                f"{time.perf_counter() - t0:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        summary = summarize(cases, args.level)
        result["datasets"][name] = summary
        lo, hi = summary["ci95"]
        clo, chi = summary["ci95_conservative"]
        print(
            f"{name}: pooled coverage of {args.level:.0%} intervals {summary['coverage']:.3f} "
            f"(95% CI {lo:.3f}-{hi:.3f}; conservative {clo:.3f}-{chi:.3f} with n={summary['n_cases']}) "
            f"raw bootstrap {summary['raw_coverage']:.3f}"
        )
    result["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(to_jsonable(result), indent=1) + "\n")
    print(f"wrote {args.out} ({result['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
