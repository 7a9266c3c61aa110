"""Benchmark: how far from the fitted mixtures does a mixing law's error stay within the noise? Chooses the
default trust radius of the optimizer (mixlaw.optimizer.TRUST_RADIUS).

    python benchmarks/trust_region.py [--data ../shared/data/mixinglaws] [--out benchmarks/results]

Buffered leave-one-mixture-out on the paper's observed losses (no scale extrapolation: the question is the
mixture-space extrapolation alone): each mixture is held out together with every other mixture closer to it
than a buffer b (L1), the law is refitted on the rest and predicts the held-out mixture, whose L1 distance to
the nearest fitted mixture is then >= b. Errors are binned by that distance. The in-support error is the
plain leave-one-out error (b = 0) of the same law and case; a bin is "within the noise" when its median
absolute error is at most TOLERANCE x the in-support median. The radius is the largest distance up to which
every bin (with >= 5 predictions) of every case stays within; the cases are the families the law is used on,
not the RedPajama 1B target scored in the report.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np

from mixlaw.files import dump_json
from mixlaw.fitted import FitData, fit_law
from mixlaw.optimizer import nearest_l1
from mixlaw.runs import load_weights, read_runs

TOLERANCE = 2.0
BUFFERS = (0.0, 0.2, 0.4, 0.6, 0.9)
BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.5, 2.0)
CASES = [
    ("RedPajama 410M@30k", "redpajama.csv", "410M", 30000),
    ("5Mix 410M@30k", "5mix.csv", "410M", 30000),
]
LAWS = ("dml-log", "log-linear")


def buffered_loo(data: FitData, law: str) -> list[tuple[float, float, float]]:
    """(buffer, distance to the nearest fitted mixture, |error| of the total) per held-out prediction."""
    ids = data.mixture_id
    X = np.array([data.X[ids == k][0] for k in range(data.n_mixtures)])
    y = np.array([data.total[ids == k].mean() for k in range(data.n_mixtures)])
    D = np.abs(X[:, None] - X[None]).sum(axis=2)
    out, seen = [], set()
    for b in BUFFERS:
        for i in range(len(X)):
            keep = np.flatnonzero(D[i] >= max(b, 1e-12))
            key = (i, tuple(keep))
            if len(keep) < 8 or key in seen:
                continue
            seen.add(key)
            rows = np.flatnonzero(np.isin(ids, keep))
            try:
                with np.errstate(all="ignore"):
                    fitted = fit_law(data.subset(rows), law, {"restarts": 2} if law == "dml-log" else {})
            except Exception:  # noqa: BLE001 - a refit that fails is left out and counted
                continue
            pred = float(fitted.predict(X[i : i + 1])["total"][0])
            dist = float(nearest_l1(X[i : i + 1], X[keep])[0][0])
            out.append((b, dist, abs(pred - y[i])))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(Path(__file__).parents[2] / "shared" / "data" / "mixinglaws"))
    parser.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = parser.parse_args()
    logging.getLogger("mixlaw").setLevel(logging.ERROR)
    data_dir = Path(args.data)
    rows, radii = [], []
    for name, file, model, step in CASES:
        table = read_runs(data_dir / file, renormalize=True)
        weights = load_weights(str(data_dir / "valid_weights.csv"), table.valid_domains, "pile_category")
        data = FitData.from_table(table, weights, model=model, step=step)
        spacing = nearest_l1(np.unique(data.X, axis=0), np.unique(data.X, axis=0), exclude_self=True)[0]
        for law in LAWS:
            started = time.perf_counter()
            preds = np.array(buffered_loo(data, law))
            print(f"{name} {law}: {len(preds)} refits, {time.perf_counter() - started:.0f} s", flush=True)
            base = float(np.median(preds[preds[:, 0] == 0, 2]))
            within_to, broken = 0.0, False
            for lo, hi in zip(BINS[:-1], BINS[1:]):
                sel = (preds[:, 1] >= lo) & (preds[:, 1] < hi)
                if sel.sum() < 5:
                    continue
                med = float(np.median(preds[sel, 2]))
                ok = med <= TOLERANCE * base
                rows.append(
                    {
                        "case": name,
                        "law": law,
                        "n_mixtures": data.n_mixtures,
                        "median_nn_spacing": float(np.median(spacing)),
                        "bin": [lo, hi],
                        "n": int(sel.sum()),
                        "median_abs_error": med,
                        "in_support_median": base,
                        "ratio": med / base if base > 0 else None,
                        "within": ok,
                    }
                )
                # the radius: the upper edge of the last populated bin before the first one beyond the noise
                broken = broken or not ok
                if not broken:
                    within_to = hi
            radii.append({"case": name, "law": law, "within_to": within_to})
    print(f"{'case':<20} {'law':<11} {'bin (L1)':<11} {'n':>4} {'median |err|':>12} {'x in-support':>12}")
    for r in rows:
        print(
            f"{r['case']:<20} {r['law']:<11} {r['bin'][0]:.1f}-{r['bin'][1]:<7.1f} {r['n']:>4} "
            f"{r['median_abs_error']:>12.5f} {r['ratio']:>12.2f}{'' if r['within'] else '  beyond'}"
        )
    radius = min(r["within_to"] for r in radii)
    print(
        "within the noise up to (L1):",
        ", ".join(f"{r['case']} {r['law']} {r['within_to']:.1f}" for r in radii),
    )
    print(f"chosen trust radius (the smallest): {radius:.2f}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dump_json(
        {"tolerance": TOLERANCE, "buffers": BUFFERS, "bins": rows, "per_case": radii, "trust_radius": radius},
        out / "trust_region.json",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
