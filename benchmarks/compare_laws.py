"""Benchmark: every law (mixlaw's and the peers') on the shared data and on a synthetic high-dimensional swarm.

    python benchmarks/compare_laws.py                      # all, writes benchmarks/results/compare_laws.{json,md}
    python benchmarks/compare_laws.py --only shared        # or: synthetic (each part updates its own section)
    python benchmarks/compare_laws.py --laws dml,ridge-rlogr --runs 200   # a smaller run

Shared data (../shared/data/mixinglaws): 5Mix at 70M/160M/305M/410M (30k steps), 3Mix 410M (60k), RedPajama
410M (30k), 2Mix 70M/160M (30k); targets are the Pile categories (5Mix, RedPajama, weights of
valid_weights.csv) or the validation domains (2Mix, 3Mix); scored on the weighted total by 5-fold CV by
mixture, repeated with `--repeats` (default 3) fold assignments and averaged; `auto` by nested CV. RedPajama's bimix needs a map from Pile categories to RedPajama sources (below).

Synthetic: 20 training domains, sparse Dirichlet swarms (RegMix-style sampler, weights < 2e-3 zeroed), a
ground truth with cross-domain transfer and pairwise synergies, a proxy scale and a larger scale whose optimum
differs. Scored by CV at the proxy scale, and by Spearman and top-1 regret when the proxy-scale fit ranks
256 unseen candidate mixtures at the larger scale. The fit time of every law on the whole swarm (500 runs x 20
domains, 6 targets; dml-implicit on the total) is printed and stored under `fit_times`, next to the times
measured before the large-swarm paths (`FIT_SECONDS_BEFORE`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mixlaw.cli.peers import compare_laws, diverged, format_table  # noqa: E402
from mixlaw.files import dump_json, to_jsonable  # noqa: E402
from mixlaw.fitted import prepare  # noqa: E402
from mixlaw.runs import RunsTable, read_runs, validate_runs  # noqa: E402
from mixlaw.selection import fit_law_or_auto  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "mixinglaws"
WEIGHTS = str(DATA / "valid_weights.csv")
RPJ_MAP = {
    "academic": ["arxiv"],
    "prose": ["book"],
    "dialogue": ["commoncrawl", "c4"],
    "symbolic": ["github"],
    "internet": ["commoncrawl", "c4", "wikipedia", "stackexchange"],
}
SHARED = [
    *[
        (
            f"5Mix {m}",
            "5mix.csv",
            {"model": m, "step": 30000, "valid_weights": WEIGHTS, "group": "pile_category"},
            None,
        )
        for m in ("70M", "160M", "305M", "410M")
    ],
    ("3Mix 410M", "3mix.csv", {"model": "410M", "step": 60000}, None),
    (
        "RedPajama 410M",
        "redpajama.csv",
        {"model": "410M", "step": 30000, "valid_weights": WEIGHTS, "group": "pile_category"},
        RPJ_MAP,
    ),
    ("2Mix 70M", "2mix.csv", {"model": "70M", "step": 30000}, None),
    ("2Mix 160M", "2mix.csv", {"model": "160M", "step": 30000}, None),
]


# Fit seconds of each law on the synthetic swarm (500 runs x 20 domains, 6 targets) before the large-swarm paths
# and the single-threaded BLAS, measured on the same 2-core machine while another process ran (as fit_law does,
# OpenBLAS's default threads). Earlier measurements under heavier load: dml 79 s, dml-log > 5 min, olmix 290 s.
FIT_SECONDS_BEFORE = {
    "dml": 2.85,
    "dml-log": 22.0,
    "dml-implicit": 156.7,
    "olmix": 57.3,
    "gp": 8.69,
    "regmix-lgbm": 1.16,
    "ridge-rlogr": 0.03,
    "bimix": 0.02,
    "log-linear": 0.0,
    "regmix-linear": 0.0,
}


def shared_benchmark(laws: list[str] | None, cv: int, repeats: int) -> list[dict]:
    out = []
    tables: dict[str, RunsTable] = {}
    for label, file, selection, domain_map in SHARED:
        if file not in tables:
            tables[file] = read_runs(DATA / file, renormalize=True)  # RedPajama run 999 sums to 1.0199 (typo)
        data = prepare(tables[file], **selection)
        started = time.perf_counter()
        rows = average_rankings(
            [compare_laws(data, laws, cv, seed, None, domain_map, auto=True) for seed in range(repeats)]
        )
        print(
            f"\n## {label}: {data.n_mixtures} mixtures, targets {', '.join(data.targets)}, {repeats} fold "
            f"assignment(s) ({time.perf_counter() - started:.0f} s)\n{format_table(rows)}",
            flush=True,
        )
        out.append(
            {
                "dataset": label,
                "n_mixtures": data.n_mixtures,
                "targets": data.targets,
                "repeats": repeats,
                "ranking": rows,
            }
        )
    return out


def average_rankings(runs: list[list[dict]]) -> list[dict]:
    """Mean of each law's metrics over repeated CV with different fold assignments (seeds), ranked by mean MAE.

    One 5-fold split of 20-30 mixtures gives MAEs that move by 20-50% with the fold assignment (one fold with a
    hard extrapolation dominates), so a single split can crown either of two close laws."""
    if len(runs) == 1:
        return runs[0]
    merged: dict[str, dict] = {}
    for rows in runs:
        for row in rows:
            merged.setdefault(row["law"], []).append(row)
    out = []
    for law, rows in merged.items():
        scored = [r for r in rows if "mae" in r]
        if len(scored) < len(runs):
            out.append({"law": law, "error": next(r["error"] for r in rows if "mae" not in r)})
            continue
        row = dict(scored[0])
        for key, value in scored[0].items():
            if isinstance(value, float):
                values = [r[key] for r in scored if r.get(key) is not None]
                row[key] = float(np.mean(values)) if values else None
        row["mae_by_repeat"] = [r["mae"] for r in scored]
        if "choices" in row:
            row["choices"] = [c for r in scored for c in r.get("choices", [])]
        out.append(row)
    ranked = sorted((r for r in out if "mae" in r), key=lambda r: r["mae"])
    return ranked + [r for r in out if "mae" not in r]


# ------------------------------------------------------------------------------------------ synthetic


def sample_swarm(prior: np.ndarray, n: int, rng: np.random.Generator, zero_below: float = 2e-3) -> np.ndarray:
    """RegMix-style sparse swarm: Dirichlet(prior^0.5 x s) with log-uniform strength s in [0.1, 5], weights
    below `zero_below` set to exactly 0, renormalized."""
    base = prior**0.5 / (prior**0.5).sum()
    strengths = np.exp(rng.uniform(np.log(0.1), np.log(5.0), n))
    X = np.stack([rng.dirichlet(np.maximum(base * s, 1e-3)) for s in strengths])
    X[X < zero_below] = 0.0
    X[X.sum(axis=1) == 0, int(np.argmax(prior))] = 1.0
    return X / X.sum(axis=1, keepdims=True)


class SyntheticTruth:
    """Per target i: L_i = E_i + B_i (S_i . r + 0.005)^(-a_i) + sum_(p,q) g_ipq sqrt(r_p r_q).

    S (T, M) is the cross-domain transfer (own domain 1, a few related domains 0.1-0.6, the rest 0.02); the
    synergy terms g < 0 reward mixing some pairs. The larger scale has lower E, steeper exponents a, more
    transfer (S^0.7) and twice the synergies, so its optimum shifts toward broader mixtures (among the 256
    candidates of the cross-scale test the best mixture changes; picking the proxy's best costs 0.007)."""

    def __init__(self, M: int = 20, T: int = 6, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.M, self.T = M, T
        self.own = rng.choice(M, T, replace=False)
        S = np.full((T, M), 0.02)
        for i in range(T):
            related = rng.choice(M, 4, replace=False)
            S[i, related] = rng.uniform(0.1, 0.6, 4)
            S[i, self.own[i]] = 1.0
        self.S = S
        self.E = rng.uniform(1.8, 2.6, T)
        self.B = rng.uniform(0.25, 0.5, T)
        self.a = rng.uniform(0.15, 0.3, T)
        self.pairs = [tuple(rng.choice(M, 2, replace=False)) for _ in range(8)]
        self.g = rng.uniform(-0.3, -0.1, (T, len(self.pairs)))
        self.weights = rng.dirichlet(np.full(T, 3.0))

    def loss(self, X: np.ndarray, scale: str = "small") -> np.ndarray:
        """(n, M) -> (n, T) losses at `small` (proxy) or `large` scale."""
        S = self.S if scale == "small" else self.S**0.7
        E = self.E if scale == "small" else self.E - 0.5
        a = self.a if scale == "small" else self.a * 1.3
        g = self.g if scale == "small" else self.g * 2.0
        eff = X @ S.T + 0.005
        synergy = np.stack([np.sqrt(X[:, p] * X[:, q]) for p, q in self.pairs], axis=1) @ g.T
        return E[None] + self.B[None] * eff ** -a[None] + synergy

    def total(self, X: np.ndarray, scale: str = "small") -> np.ndarray:
        return self.loss(X, scale) @ self.weights


def synthetic_runs(truth: SyntheticTruth, X: np.ndarray, noise: float, rng: np.random.Generator) -> RunsTable:
    Y = truth.loss(X) + rng.normal(0, noise, (len(X), truth.T))
    domains = [f"d{j:02d}" for j in range(truth.M)]
    targets = [domains[j] for j in truth.own]  # validation sets named after their own training domain (bimix)
    rows = []
    for i in range(len(X)):
        base = {
            "run": f"r{i}",
            "model": "proxy",
            "step": 1000,
            **{f"p_{d}": X[i, j] for j, d in enumerate(domains)},
        }
        rows += [{**base, "valid_domain": t, "loss": Y[i, k]} for k, t in enumerate(targets)]
    return RunsTable(validate_runs(pd.DataFrame(rows), "synthetic"), "synthetic")


def synthetic_benchmark(laws: list[str] | None, n_runs: int, cv: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    truth = SyntheticTruth(seed=seed)
    prior = rng.dirichlet(np.full(truth.M, 0.7))
    X = sample_swarm(prior, n_runs, rng)
    table = synthetic_runs(truth, X, noise=0.005, rng=rng)
    weights_file = ROOT / "benchmarks" / "results" / "synthetic_weights.csv"
    weights_file.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"valid_domain": [f"d{j:02d}" for j in truth.own], "valid_weight": truth.weights}).to_csv(
        weights_file, index=False
    )
    data = prepare(table, model="proxy", step=1000, valid_weights=str(weights_file))
    zeros = float((X == 0).mean())
    print(
        f"\n## synthetic: {len(X)} mixtures x {truth.M} domains ({zeros:.0%} exact zeros), {truth.T} targets",
        flush=True,
    )
    started = time.perf_counter()
    rows = compare_laws(data, laws, cv, seed, None, None, auto=True)
    print(f"{format_table(rows)}\n({time.perf_counter() - started:.0f} s)", flush=True)

    # Cross-scale: fit at the proxy scale, rank 256 unseen candidates at the larger scale.
    candidates = sample_swarm(prior, 256, rng)
    true_large = truth.total(candidates, "large")
    true_small = truth.total(candidates, "small")
    best_large = int(np.argmin(true_large))
    scale_rows = [
        {
            "law": "oracle: true small-scale total",
            "spearman": float(spearmanr(true_small, true_large).statistic),
            "regret": float(true_large[np.argmin(true_small)] - true_large[best_large]),
        }
    ]
    names = [row["law"] for row in rows if "mae" in row]
    if laws is None:
        names.append("dml-implicit")  # not a compare/auto candidate (total only), but timed here too
    for name in names:
        started = time.perf_counter()
        fitted = fit_law_or_auto(data, name, {"domain_map": None} if name == "auto" else None)
        seconds = time.perf_counter() - started
        pred = fitted.predict_total(candidates)
        pick = int(np.argmin(pred))
        scale_rows.append(
            {
                "law": name + (f" ({fitted.law.name})" if name == "auto" else ""),
                "spearman": float(spearmanr(pred, true_large).statistic),
                "regret": float(true_large[pick] - true_large[best_large]),
                "fit_seconds": seconds,
            }
        )
    print(
        f"\ncross-scale (proxy fit -> larger scale, 256 candidates; optimum loss {true_large[best_large]:.4f}):"
    )
    print(f"{'law':<34} {'spearman':>9} {'regret':>9} {'fit s':>7}")
    for r in scale_rows:
        print(
            f"{r['law']:<34} {r['spearman']:>9.4f} {r['regret']:>9.5f} {r.get('fit_seconds', float('nan')):>7.2f}"
        )
    fit_times = {
        r["law"]: r["fit_seconds"]
        for r in scale_rows
        if "fit_seconds" in r and not r["law"].startswith("auto")
    }
    print(f"\nfit time on all {len(X)} runs x {truth.M} domains ({truth.T} targets), seconds:")
    print(f"{'law':<16} {'before':>8} {'now':>8}")
    for name, seconds in sorted(fit_times.items(), key=lambda kv: -kv[1]):
        before = FIT_SECONDS_BEFORE.get(name)
        print(f"{name:<16} {'' if before is None else f'{before:.2f}':>8} {seconds:>8.2f}")
    return {
        "n_runs": len(X),
        "n_domains": truth.M,
        "n_targets": truth.T,
        "zero_fraction": zeros,
        "ranking": rows,
        "cross_scale": scale_rows,
        "optimum_moves": bool(np.argmin(true_small) != best_large),
        "fit_times": fit_times,
        "fit_times_before": FIT_SECONDS_BEFORE,
    }


def summarize(shared: list[dict]) -> list[dict]:
    """Per dataset: best single law, auto (nested CV) and their MAE ratio."""
    out = []
    for d in shared:
        scored = [r for r in d["ranking"] if "mae" in r]
        single = [r for r in scored if r["law"] != "auto"]
        auto = next((r for r in scored if r["law"] == "auto"), None)
        best = single[0]
        out.append(
            {
                "dataset": d["dataset"],
                "n_mixtures": d["n_mixtures"],
                "best": best["law"],
                "best_mae": best["mae"],
                "auto_mae": auto["mae"] if auto else None,
                "auto_over_best": auto["mae"] / best["mae"] if auto else None,
                "auto_choices": auto.get("choices") if auto else None,
                "runner_up": single[1]["law"] if len(single) > 1 else None,
                "margin": single[1]["mae"] / best["mae"] - 1 if len(single) > 1 else None,
            }
        )
    return out


def _ranking_md(rows: list[dict]) -> list[str]:
    lines = ["| rank | law | MAE | rel. err | Spearman | R2 | fit s |", "|---:|---|---:|---:|---:|---:|---:|"]
    for i, r in enumerate(x for x in rows if "mae" in x):
        if diverged(r):
            lines.append(
                f"| {i + 1} | {r['law']} | {r['mae']:.2e} (diverged) | | | | {r['fit_seconds']:.3f} |"
            )
            continue
        lines.append(
            f"| {i + 1} | {r['law']}{' (nested CV)' if r.get('nested') else ''} | {r['mae']:.5f} | "
            f"{r['mare']:.3%} | {r['spearman']:.4f} | {r['r2']:.4f} | {r['fit_seconds']:.3f} |"
        )
    lines += [f"| - | {r['law']} | not applicable: {r['error']} | | | | |" for r in rows if "mae" not in r]
    return lines


def markdown(result: dict) -> str:
    """The results as a markdown report (summary first, then every ranking)."""
    repeats = (result.get("shared") or [{}])[0].get("repeats", 1)
    out = [
        "# compare_laws: every law on the shared data and on a synthetic 20-domain swarm",
        "",
        "Generated by `python benchmarks/compare_laws.py` (see its docstring). MAE of the weighted total (or of "
        f"the single target), 5-fold CV by mixture (shared data: mean over {repeats} fold assignments); `auto` is "
        "scored by nested CV (the selection is redone inside every outer fold on its training mixtures only).",
        "",
    ]
    if "summary" in result:
        out += [
            "## Shared data: --law auto against the best single law",
            "",
            "| dataset | mixtures | best single law | its MAE | auto MAE | auto / best | auto's choices (outer folds) |",
            "|---|---:|---|---:|---:|---:|---|",
        ]
        for s in result["summary"]:
            choices = ", ".join(s.get("auto_choices") or [])
            out.append(
                f"| {s['dataset']} | {s.get('n_mixtures', '')} | {s['best']} | {s['best_mae']:.5f} | "
                f"{s['auto_mae']:.5f} | {s['auto_over_best']:.3f} | {choices} |"
            )
        worst = max(s["auto_over_best"] for s in result["summary"])
        out += ["", f"Largest auto / best ratio: {worst:.3f} (target: at most 1.10).", ""]
        for d in result["shared"]:
            out += [f"### {d['dataset']} ({d['n_mixtures']} mixtures; targets {', '.join(d['targets'])})", ""]
            out += _ranking_md(d["ranking"]) + [""]
    if "synthetic" in result:
        syn = result["synthetic"]
        out += [
            f"## Synthetic swarm: {syn['n_runs']} runs x {syn['n_domains']} domains "
            f"({syn['zero_fraction']:.0%} exact zeros), {syn.get('n_targets', '')} targets",
            "",
        ]
        out += _ranking_md(syn["ranking"]) + [""]
        out += [
            "### Cross-scale: fit at the proxy scale, rank 256 unseen mixtures at the larger scale",
            "",
            f"The larger scale's optimum differs from the proxy's: {syn['optimum_moves']}.",
            "",
            "| law | Spearman | top-1 regret |",
            "|---|---:|---:|",
        ]
        out += [f"| {r['law']} | {r['spearman']:.4f} | {r['regret']:.5f} |" for r in syn["cross_scale"]]
        out += [
            "",
            f"### Fit time on all {syn['n_runs']} runs x {syn['n_domains']} domains (seconds, 2 cores)",
            "",
            "| law | before | now |",
            "|---|---:|---:|",
        ]
        before = syn.get("fit_times_before", {})
        for name, seconds in sorted(syn["fit_times"].items(), key=lambda kv: -kv[1]):
            b = before.get(name)
            out.append(f"| {name} | {'' if b is None else f'{b:.2f}'} | {seconds:.2f} |")
        out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=["shared", "synthetic"])
    parser.add_argument("--laws", help="comma list (default: all)")
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="shared data: repeat the CV with this many fold assignments and average",
    )
    parser.add_argument("--runs", type=int, default=500, help="synthetic swarm size")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compare_laws.json"))
    args = parser.parse_args()
    laws = args.laws.split(",") if args.laws else None
    out = Path(args.out)
    result: dict = {}
    if args.only and out.exists():  # one part at a time: keep the other part's results
        import json

        result = json.loads(out.read_text())
    if args.only in (None, "shared"):
        result["shared"] = shared_benchmark(laws, args.cv, args.repeats)
        result["summary"] = summarize(result["shared"])
        print("\n## summary (MAE of the weighted total, 5-fold CV by mixture; auto by nested CV)")
        for s in result["summary"]:
            print(
                f"{s['dataset']:<16} best {s['best']:<12} {s['best_mae']:.5f}  auto {s['auto_mae']:.5f} "
                f"(x{s['auto_over_best']:.3f})  runner-up {s['runner_up']} +{s['margin']:.0%}"
            )
    if args.only in (None, "synthetic"):
        result["synthetic"] = synthetic_benchmark(laws, args.runs, args.cv)
    dump_json(result, out)
    out.with_suffix(".md").write_text(markdown(to_jsonable(result)) + "\n")
    print(f"\nwrote {out} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
