"""Learning curves and the pool-based test of the adaptive design, on the shared 5Mix (and RedPajama) data.

1. Learning curve: for n runs (mixtures) drawn at random (20 subsets per n), fit the law on them and report
   the MAE of the total loss on the other mixtures and the optimum's stability: the L1 distance between the
   optimum of the n-run law and of the all-run law, and the all-run law's predicted regret at the n-run optimum.
2. Pool test of `mixlaw.adaptive`: choose n of the 26 5Mix mixtures (start: a maximin set of `--start` in
   the pool, then adaptive batches of `--batch`), fit on the chosen, score the MAE of the total on the unchosen;
   compare with the mean over 20 random subsets of the same n. Repeated for several sizes and design seeds.

    python benchmarks/learning_curve.py            # -> benchmarks/results/learning_curve.json

Caveat printed with the numbers: the unchosen (test) set differs between strategies, so a design that takes
the hard mixtures leaves easier ones to score. The regret column does not have that bias.
Needs the shared data (../shared/data/mixinglaws or --data); says so and exits 0 when it is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from mixlaw.adaptive import adaptive_design, farthest_points
from mixlaw.files import to_jsonable
from mixlaw.fitted import FitData, fit_law, prepare
from mixlaw.laws import get_law
from mixlaw.runs import RunsTable, read_table, validate_runs
from mixlaw.uncertainty import reoptimize

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "mixinglaws"


def load(data_dir: Path, file: str) -> RunsTable:
    frame = read_table(data_dir / file)
    frame = frame[frame["run"].astype(int) < 900].reset_index(drop=True)
    return RunsTable(validate_runs(frame, str(data_dir / file)), str(data_dir / file))


def rows_of(data: FitData, mixtures: np.ndarray) -> np.ndarray:
    return np.isin(data.mixture_id, mixtures)


def score(data: FitData, chosen: np.ndarray, law: str, hyper: dict, reference: dict) -> dict:
    """MAE of the total on the unchosen mixtures, optimum distance and regret against the all-run law."""
    train = rows_of(data, chosen)
    fitted = fit_law(data.subset(train), law, hyper)
    with np.errstate(all="ignore"):
        pred = fitted.predict_total(data.X[~train])
    x = reoptimize(fitted, seed=0)
    full = reference["fitted"]
    return {
        "mae": float(np.mean(np.abs(pred - data.total[~train]))),
        "opt_l1": float(np.abs(x - reference["optimum"]).sum()),
        "regret": float(full.predict_total(x[None])[0] - reference["value"]),
    }


def reference_fit(data: FitData, law: str, hyper: dict) -> dict:
    fitted = fit_law(data, law, hyper)
    x = reoptimize(fitted, seed=0)
    return {"fitted": fitted, "optimum": x, "value": float(fitted.predict_total(x[None])[0])}


def random_subsets(n_mix: int, n: int, repeats: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed + 1000 * n)
    return [np.sort(rng.choice(n_mix, size=n, replace=False)) for _ in range(repeats)]


def learning_curve(
    data: FitData, law: str, hyper: dict, sizes: list[int], repeats: int, seed: int
) -> list[dict]:
    reference = reference_fit(data, law, hyper)
    n_mix = data.n_mixtures
    table = []
    for n in sizes:
        scores = [score(data, s, law, hyper, reference) for s in random_subsets(n_mix, n, repeats, seed)]
        row = {"n": n}
        for key in ("mae", "opt_l1", "regret"):
            values = np.array([s[key] for s in scores])
            row[key] = float(np.mean(values))
            row[key + "_sd"] = float(np.std(values))
        table.append(row)
    return table


def adaptive_sequence(
    data: FitData,
    law: str,
    hyper: dict,
    n_max: int,
    start: int,
    batch: int,
    seed: int,
    n_bootstrap: int,
    objective: str,
) -> list[int]:
    """Pool-based adaptive selection: mixture ids in the order chosen."""
    pool = np.unique(data.X, axis=0)
    ids = np.array([data.mixture_id[np.flatnonzero(np.all(data.X == p, axis=1))[0]] for p in pool])
    order = [int(ids[i]) for i in farthest_points(pool, start)]
    while len(order) < n_max:
        sub = data.subset(rows_of(data, np.array(order)))
        k = min(batch, n_max - len(order))
        mixtures, _ = adaptive_design(
            sub, law, k, hyper, seed=seed, pool=pool, n_bootstrap=n_bootstrap, objective=objective
        )
        for m in mixtures:
            x = np.array([m[d] for d in data.domains])
            order.append(int(ids[np.argmin(np.abs(pool - x).sum(axis=1))]))
    return order


def pool_test(
    data: FitData,
    law: str,
    hyper: dict,
    sizes: list[int],
    repeats: int,
    start: int,
    batch: int,
    seeds: list[int],
    n_bootstrap: int,
    objective: str,
) -> dict:
    reference = reference_fit(data, law, hyper)
    n_mix = data.n_mixtures
    result = {"sizes": sizes, "random": {}, "adaptive": {}, "spacefilling": {}}
    for n in sizes:
        scores = [score(data, s, law, hyper, reference) for s in random_subsets(n_mix, n, repeats, 0)]
        result["random"][n] = {k: float(np.mean([s[k] for s in scores])) for k in ("mae", "opt_l1", "regret")}
    pool = np.unique(data.X, axis=0)
    ids = np.array([data.mixture_id[np.flatnonzero(np.all(data.X == p, axis=1))[0]] for p in pool])
    for n in sizes:
        chosen = np.array([int(ids[i]) for i in farthest_points(pool, n)])
        result["spacefilling"][n] = score(data, chosen, law, hyper, reference)
    per_seed = []
    for seed in seeds:
        order = adaptive_sequence(data, law, hyper, max(sizes), start, batch, seed, n_bootstrap, objective)
        per_seed.append({n: score(data, np.array(order[:n]), law, hyper, reference) for n in sizes})
    for n in sizes:
        result["adaptive"][n] = {
            k: float(np.mean([s[n][k] for s in per_seed])) for k in ("mae", "opt_l1", "regret")
        }
        result["adaptive"][n]["mae_per_seed"] = [s[n]["mae"] for s in per_seed]
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument(
        "--law", default="ridge-rlogr", help="law (default ridge-rlogr: fits from 2 mixtures, never blows up)"
    )
    p.add_argument("--models", default="70M,410M", help="5Mix sizes for the pool test and learning curve")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--start", type=int, default=6, help="pool test: maximin start size")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--bootstrap", type=int, default=24)
    p.add_argument("--objective", default="both", choices=["both", "optimum", "prediction"])
    p.add_argument(
        "--redpajama", action="store_true", help="also a learning curve on RedPajama 70M (40 mixtures)"
    )
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "learning_curve.json")
    args = p.parse_args(argv)
    if not (args.data / "5mix.csv").exists():
        print(f"learning_curve: shared data not found at {args.data}; skipping (pass --data DIR)")
        return 0
    logging.disable(logging.WARNING)
    np.seterr(all="ignore")
    started = time.perf_counter()
    hyper = {"restarts": 8} if "restarts" in get_law(args.law).defaults else {}
    weights = str(args.data / "valid_weights.csv")
    table = load(args.data, "5mix.csv")
    out: dict = {"law": args.law, "repeats": args.repeats, "learning_curve": {}, "pool_test": {}}
    sizes = [8, 10, 12, 14, 16, 18, 20, 22, 24]
    for model in args.models.split(","):
        data = prepare(table, model=model, step=30000, valid_weights=weights, group="pile_category")
        lc = learning_curve(data, args.law, hyper, sizes, args.repeats, 0)
        out["learning_curve"][f"5mix/{model}"] = lc
        print(
            f"\nlearning curve 5Mix {model} ({args.law}, {args.repeats} random subsets per n; "
            f"MAE of the total on the other mixtures; optimum L1 distance and regret vs the all-run law)"
        )
        print(f"{'n':>3} {'mae':>8} {'±sd':>7} {'opt_l1':>7} {'regret':>8}")
        for r in lc:
            print(f"{r['n']:>3} {r['mae']:>8.4f} {r['mae_sd']:>7.4f} {r['opt_l1']:>7.3f} {r['regret']:>8.4f}")
        pt = pool_test(
            data,
            args.law,
            hyper,
            [10, 14, 18],
            args.repeats,
            args.start,
            args.batch,
            [int(s) for s in args.seeds.split(",")],
            args.bootstrap,
            args.objective,
        )
        out["pool_test"][f"5mix/{model}"] = pt
        print(f"\npool test 5Mix {model}: MAE of the total on the unchosen mixtures (regret in brackets)")
        print(f"{'n':>3} {'adaptive':>18} {'random mean':>18} {'maximin':>18}  adaptive MAE per seed")
        for n in pt["sizes"]:
            a, r, s = pt["adaptive"][n], pt["random"][n], pt["spacefilling"][n]
            print(
                f"{n:>3} {a['mae']:>8.4f} ({a['regret']:.4f}) {r['mae']:>8.4f} ({r['regret']:.4f}) "
                f"{s['mae']:>8.4f} ({s['regret']:.4f})  " + " ".join(f"{v:.4f}" for v in a["mae_per_seed"])
            )
        sys.stdout.flush()
    if args.redpajama:
        rp = load(args.data, "redpajama.csv")
        data = prepare(rp, model="70M", step=30000, valid_weights=weights, group="pile_category")
        lc = learning_curve(data, args.law, hyper, [10, 14, 18, 22, 26, 30, 34], args.repeats, 0)
        out["learning_curve"]["redpajama/70M"] = lc
        print("\nlearning curve RedPajama 70M")
        for r in lc:
            print(f"{r['n']:>3} {r['mae']:>8.4f} {r['mae_sd']:>7.4f} {r['opt_l1']:>7.3f} {r['regret']:>8.4f}")
    out["seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(to_jsonable(out), indent=1) + "\n")
    print(f"\nwrote {args.out} ({out['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
