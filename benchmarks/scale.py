"""Benchmark: fit and optimize cost at 5 to 256 domains and 40 to 5,000 runs, as whole `mixlaw` processes.

    nice python benchmarks/scale.py                                  # all sizes, writes benchmarks/results/scale.json
    nice python benchmarks/scale.py --sizes 5x40,20x500 --laws dml   # a quick run (results go to --out)

Each size is a synthetic swarm (domains x runs) drawn from a known law: RegMix-style sparse Dirichlet mixtures
(`compare_laws.sample_swarm`), 6 validation targets L_t = c_t + exp(t_t . r) (each target has its own domain
and four related ones; t as below), Gaussian noise 0.003, uniform total weights. Every law is fitted with
`python -m mixlaw fit` and optimized with `python -m mixlaw optimize` in its own process; peak RSS and CPU
seconds (user + system) come from os.wait4 for that process alone. Accuracy: MAE of the predicted total on 512
held-out mixtures from the same sampler against the noise-free truth. Regret: true total at the optimum minus
the true optimum (the truth is convex; solved exactly by mixlaw's optimizer).

In the same run, for comparison (in-process, CPU seconds of this process):
- scipy: a plain loop of `scipy.optimize.least_squares` (Huber, 2-point Jacobian, 3 starts) per target on the
  same c + exp(t . r) form, stopped at --scipy-budget CPU seconds; its law optimized by mixlaw's optimizer.
- regmix: RegMix's pipeline: its LightGBM regressor (mixlaw's `regmix-lgbm`, RegMix's settings) and RegMix's
  random search (100,000 Dirichlet mixtures around the swarm's prior, the mean of the 100 best predicted).

The log-log growth of CPU time and peak memory, log y = a + b log(domains) + c log(runs), is fitted per law and
phase over the sizes measured.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_laws import sample_swarm  # noqa: E402

from mixlaw.fitted import FittedLaw  # noqa: E402
from mixlaw.laws import get_law  # noqa: E402
from mixlaw.optimizer import optimize  # noqa: E402
from mixlaw.runs import dump_json, to_jsonable  # noqa: E402

SIZES = ["5x40", "20x500", "64x1000", "100x2000", "256x5000"]
LAWS = ["dml", "dml-log", "ridge-rlogr", "regmix-lgbm"]
T = 6
NOISE = 0.003
HELD_OUT = 512
# Targets of issue 19 (100 domains x 2,000 runs; 64 x 1,000): CPU seconds and MB of peak RSS.
TARGETS = {
    "100x2000": {"optimize": (5.0, 500.0), "fit": (60.0, 1000.0)},
    "64x1000": {"optimize": (2.0, 300.0)},
}
PARAMETRIC = ("dml", "dml-log", "ridge-rlogr")


class Truth:
    """L_t = c_t + exp(t_t . r): own domain -2.5, four related domains in [-1.2, -0.3], the rest N(0, 0.1)."""

    def __init__(self, M: int, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.M = M
        own = rng.choice(M, min(T, M), replace=False)
        self.own = np.resize(own, T)
        theta = rng.normal(0, 0.1, (T, M))
        for t in range(T):
            related = rng.choice(M, min(4, M), replace=False)
            theta[t, related] = rng.uniform(-1.2, -0.3, len(related))
            theta[t, self.own[t]] = -2.5
        self.theta = theta
        self.c = rng.uniform(1.8, 2.6, T)
        self.prior = rng.dirichlet(np.full(M, 0.7))

    def loss(self, X: np.ndarray) -> np.ndarray:
        return self.c[None] + np.exp(X @ self.theta.T)

    def total(self, X: np.ndarray) -> np.ndarray:
        return self.loss(X).mean(axis=1)

    def as_law(self) -> FittedLaw:
        law = get_law("dml")()
        law.n_domains_ = self.M
        law.params_ = {"log_c": np.log(self.c).tolist(), "theta": self.theta.tolist()}
        targets = [f"v{t}" for t in range(T)]
        return FittedLaw(law, [f"d{j:03d}" for j in range(self.M)], targets, {t: 1 / T for t in targets})


def write_swarm(truth: Truth, n: int, path: Path, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = sample_swarm(truth.prior, n, rng)
    Y = truth.loss(X) + rng.normal(0, NOISE, (n, T))
    shares = pd.DataFrame(X, columns=[f"p_d{j:03d}" for j in range(truth.M)])
    frames = []
    for t in range(T):
        frame = shares.copy()
        frame.insert(0, "run", [f"r{i}" for i in range(n)])
        frame.insert(1, "model", "proxy")
        frame.insert(2, "step", 1000)
        frame["valid_domain"] = f"v{t}"
        frame["loss"] = Y[:, t]
        frames.append(frame)
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)
    return X


def measured(args: list[str], timeout: float) -> dict:
    """`python -m mixlaw ARGS` in its own process: CPU s (user + sys), peak RSS MB, wall s.

    Measured by GNU time (/usr/bin/time) around the process: the rusage of a child forked from this benchmark
    would count this process's own memory at the fork in the child's peak RSS. Without GNU time, os.wait4."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    stderr = tempfile.TemporaryFile()
    report = tempfile.NamedTemporaryFile(suffix=".time", delete=False)
    gnu_time = Path("/usr/bin/time").exists()
    prefix = ["/usr/bin/time", "-f", "%U %S %M", "-o", report.name] if gnu_time else []
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "mixlaw", *args], env=env, stdout=subprocess.DEVNULL, stderr=stderr
    )
    deadline = started + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr.seek(0)
    user, system, peak_kb = usage.ru_utime, usage.ru_stime, usage.ru_maxrss
    if gnu_time:
        fields = Path(report.name).read_text().split()[-3:]  # after "Command exited with non-zero status N"
        user, system, peak_kb = float(fields[0]), float(fields[1]), float(fields[2])
    Path(report.name).unlink(missing_ok=True)
    return {
        "cpu_s": user + system,
        "user_s": user,
        "sys_s": system,
        "peak_mb": peak_kb / 1024,
        "wall_s": time.perf_counter() - started,
        "ok": proc.returncode == 0,
        "error": None if proc.returncode == 0 else stderr.read().decode(errors="replace")[-500:],
    }


def cpu_now() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def scipy_loop(X: np.ndarray, Y: np.ndarray, budget: float, seed: int = 0) -> tuple[dict | None, float]:
    """Per target, scipy least_squares of c + exp(X t) from 3 starts; None if it exceeds `budget` CPU s."""
    from scipy.optimize import least_squares

    rng = np.random.default_rng(seed)
    started = cpu_now()
    log_c, theta = [], []
    for t in range(Y.shape[1]):
        y = Y[:, t]
        best = None
        for _ in range(3):
            x0 = np.concatenate([[np.log(0.5 * y.min())], rng.normal(0, 0.3, X.shape[1])])

            def residual(p: np.ndarray, y=y) -> np.ndarray:
                with np.errstate(over="ignore"):
                    return np.exp(p[0]) + np.exp(np.clip(X @ p[1:], -50, 50)) - y

            fit = least_squares(residual, x0, loss="huber", f_scale=0.02, max_nfev=200 * len(x0))
            if best is None or fit.cost < best.cost:
                best = fit
            if cpu_now() - started > budget:
                return None, cpu_now() - started
        log_c.append(float(best.x[0]))
        theta.append(best.x[1:].tolist())
    return {"log_c": log_c, "theta": theta}, cpu_now() - started


def regmix_search(
    truth: Truth, X: np.ndarray, Y: np.ndarray, seed: int = 0
) -> tuple[np.ndarray, float, object]:
    """RegMix: LightGBM per target, 100,000 Dirichlet mixtures around the prior, mean of the 100 best."""
    started = cpu_now()
    law = get_law("regmix-lgbm")().fit(X, Y)
    rng = np.random.default_rng(seed)
    base = truth.prior**0.5 / (truth.prior**0.5).sum()
    best_x, best_v = np.empty((0, truth.M)), np.empty(0)
    for _ in range(5):  # 5 x 20,000 samples
        strengths = np.exp(rng.uniform(np.log(0.1), np.log(5.0), 20_000))
        C = rng.standard_gamma(np.maximum(base[None] * strengths[:, None], 1e-3))
        C = C / C.sum(axis=1, keepdims=True)
        v = law.predict(C).mean(axis=1)
        best_x, best_v = np.vstack([best_x, C]), np.concatenate([best_v, v])
        keep = np.argsort(best_v)[:100]
        best_x, best_v = best_x[keep], best_v[keep]
    x = best_x.mean(axis=0)
    return x / x.sum(), cpu_now() - started, law


def loglog(rows: list[dict], key: str) -> dict | None:
    """log y = a + b log(domains) + c log(runs) by least squares over the sizes (None with < 3 sizes)."""
    pts = [(r["domains"], r["runs"], r[key]) for r in rows if r.get(key)]
    if len(pts) < 3:
        return None
    A = np.array([[1.0, np.log(m), np.log(n)] for m, n, _ in pts])
    y = np.log([v for _, _, v in pts])
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    return {"domains_exponent": float(coef[1]), "runs_exponent": float(coef[2]), "n_sizes": len(pts)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(SIZES), help="comma list of DOMAINSxRUNS")
    parser.add_argument("--laws", default=",".join(LAWS))
    parser.add_argument("--timeout", type=float, default=900.0, help="wall seconds per process")
    parser.add_argument("--scipy-budget", type=float, default=300.0, help="CPU seconds for the scipy loop")
    parser.add_argument("--no-peers", action="store_true", help="skip the scipy and RegMix comparisons")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale.json"))
    args = parser.parse_args(argv)
    laws = [s for s in args.laws.split(",") if s]
    rows: list[dict] = []
    work = Path(tempfile.mkdtemp(prefix="mixlaw-scale-"))
    for size in [s for s in args.sizes.split(",") if s]:
        M, n = (int(v) for v in size.lower().split("x"))
        truth = Truth(M, seed=M)
        runs = work / f"runs_{size}.parquet"
        X = write_swarm(truth, n, runs, seed=n)
        held = sample_swarm(truth.prior, HELD_OUT, np.random.default_rng(n + 1))
        true_opt = optimize(truth.as_law())
        x_star = np.array(list(true_opt["mixture"].values()))
        best_true = min(float(truth.total(x_star[None])[0]), float(truth.total(X).min()))
        print(f"\n## {M} domains x {n} runs ({(X == 0).mean():.0%} exact zeros), {T} targets", flush=True)
        for name in laws:
            law_path, opt_path = work / f"{size}_{name}.json", work / f"{size}_{name}_opt.json"
            fit = measured(
                ["fit", str(runs), "--law", name, "--valid-weights", "uniform", "--out", str(law_path), "-q"],
                args.timeout,
            )
            row = {"size": size, "domains": M, "runs": n, "law": name, "fit": fit}
            if fit["ok"]:
                opt = measured(["optimize", str(law_path), "--out", str(opt_path), "-q"], args.timeout)
                row["optimize"] = opt
                fitted = FittedLaw.load(law_path)
                row["mae"] = float(np.abs(fitted.predict_total(held) - truth.total(held)).mean())
                row["law_json_mb"] = law_path.stat().st_size / 1e6
                if opt["ok"]:
                    result = json.loads(opt_path.read_text())
                    x = np.array([result["mixture"][c] for c in fitted.domain_columns])
                    row["regret"] = float(truth.total(x[None])[0] - best_true)
                    row["solver"] = result["solver"]["method"]
            rows.append(row)
            print(format_row(row), flush=True)
        if not args.no_peers:
            Y = truth.loss(X) + np.random.default_rng(n).normal(0, NOISE, (n, T))
            params, cpu = scipy_loop(X, Y, args.scipy_budget)
            row = {
                "size": size,
                "domains": M,
                "runs": n,
                "law": "scipy loop",
                "fit": {"cpu_s": cpu, "ok": params is not None},
            }
            if params is not None:
                peer = truth.as_law()
                peer.law.params_ = params
                row["mae"] = float(np.abs(peer.predict_total(held) - truth.total(held)).mean())
                x = np.array(list(optimize(peer)["mixture"].values()))
                row["regret"] = float(truth.total(x[None])[0] - best_true)
            else:
                row["fit"]["note"] = f"did not finish in {args.scipy_budget:g} CPU s"
            rows.append(row)
            print(format_row(row), flush=True)
            x, cpu, law = regmix_search(truth, X, Y)
            row = {
                "size": size,
                "domains": M,
                "runs": n,
                "law": "regmix (lgbm + random search)",
                "fit": {"cpu_s": cpu, "ok": True, "note": "fit and search together"},
                "mae": float(np.abs(law.predict(held).mean(axis=1) - truth.total(held)).mean()),
                "regret": float(truth.total(x[None])[0] - best_true),
            }
            rows.append(row)
            print(format_row(row), flush=True)
    growth = {}
    for name in laws:
        mine = [r for r in rows if r["law"] == name and r["fit"].get("ok")]
        for phase in ("fit", "optimize"):
            flat = [
                {
                    "domains": r["domains"],
                    "runs": r["runs"],
                    "cpu": r[phase]["cpu_s"],
                    "mem": r[phase]["peak_mb"],
                }
                for r in mine
                if phase in r and r[phase].get("ok")
            ]
            growth[f"{name}/{phase}"] = {"cpu_s": loglog(flat, "cpu"), "peak_mb": loglog(flat, "mem")}
    checks = target_checks(rows)
    print("\n## targets (issue 19)")
    for c in checks:
        print(
            f"{c['size']:>9} {c['law']:<12} {c['what']:<28} {c['measured']:>9.2f} <= {c['target']:<6g} {'met' if c['met'] else 'MISSED'}"
        )
    print("\n## log-log growth (exponents of domains, runs)")
    for key, g in growth.items():
        if g["cpu_s"]:
            print(
                f"{key:<24} cpu: {g['cpu_s']['domains_exponent']:+.2f}, {g['cpu_s']['runs_exponent']:+.2f}   "
                f"memory: {g['peak_mb']['domains_exponent']:+.2f}, {g['peak_mb']['runs_exponent']:+.2f}"
            )
    out = {
        "description": __doc__.strip().split("\n\n")[1],
        "machine": f"{os.cpu_count()} cores, shared; processes run at nice 10 from the caller",
        "rows": rows,
        "growth": growth,
        "targets": checks,
    }
    dump_json(to_jsonable(out), args.out)
    print(f"\nwrote {args.out}")
    return 0


def target_checks(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        goals = TARGETS.get(r["size"], {})
        for phase, (cpu, mb) in goals.items():
            if phase == "fit" and r["law"] not in PARAMETRIC:
                continue
            if phase not in r or not r[phase].get("ok"):
                continue
            for what, value, limit in (
                (f"{phase} CPU s", r[phase]["cpu_s"], cpu),
                (f"{phase} peak MB", r[phase]["peak_mb"], mb),
            ):
                out.append(
                    {
                        "size": r["size"],
                        "law": r["law"],
                        "what": what,
                        "measured": value,
                        "target": limit,
                        "met": value <= limit,
                    }
                )
    for size in {r["size"] for r in rows}:
        mine = next(
            (r for r in rows if r["size"] == size and r["law"] == "regmix-lgbm" and "regret" in r), None
        )
        theirs = next((r for r in rows if r["size"] == size and r["law"].startswith("regmix (")), None)
        if mine and theirs:
            out.append(
                {
                    "size": size,
                    "law": "regmix-lgbm",
                    "what": "regret <= RegMix search",
                    "measured": mine["regret"],
                    "target": theirs["regret"],
                    "met": mine["regret"] <= theirs["regret"] + 1e-12,
                }
            )
    return out


def format_row(r: dict) -> str:
    fit, opt = r["fit"], r.get("optimize") or {}
    parts = [f"{r['size']:>9}", f"{r['law']:<30}"]
    parts.append(
        f"fit {fit['cpu_s']:8.2f} CPU-s" + (f" {fit['peak_mb']:7.0f} MB" if "peak_mb" in fit else " " * 11)
    )
    if opt:
        parts.append(f"optimize {opt['cpu_s']:6.2f} CPU-s {opt['peak_mb']:6.0f} MB")
    else:
        parts.append(" " * 32)
    if "mae" in r:
        parts.append(f"MAE {r['mae']:.5f}")
    if "regret" in r:
        parts.append(f"regret {r['regret']:.5f}")
    if not fit.get("ok", True) or (opt and not opt["ok"]):
        parts.append("FAILED " + str(fit.get("error") or opt.get("error") or fit.get("note")))
    return "  ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
