"""Benchmark: the nested pipeline on the Data Mixing Laws RedPajama and 5Mix data (Ye et al. 2024).

    python benchmarks/redpajama_pipeline.py [--data ../shared/data/mixinglaws] [--out benchmarks/results]

RedPajama: 70M-410M, steps 10k-30k, target 1B (805,736,448 non-embedding params) at 100k steps, Pile
categories as groups, chain and joint scale laws. Reports the stage checks, the 1B predictions of the held-out
runs (heldout_manifest.csv: run 999 read with C4 = 0.1484375, run 997 = run 18's mixture, runs 5 and 8) next to
the reference pipeline's predictions, the optimum under the paper's availability caps, and the time. 5Mix: the
same at 1B for 20k, 30k and 100k steps. The 1B observations are held out, so the predictions are written to
JSON for later scoring. Times are wall seconds and CPU seconds (user + sys of this process, the fair measure on
a shared machine); `cli` is the whole `mixlaw pipeline` command on RedPajama (bootstrap, optimum, gains,
files), run in this process.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mixlaw.files import dump_json
from mixlaw.optimizer import optimize
from mixlaw.pipeline import PipelineConfig, run_pipeline
from mixlaw.runs import load_weights, read_runs

REPO = Path(__file__).resolve().parent.parent
TARGET_1B = 805_736_448
RP_CAPS = [1, 1, 0.5857, 0.2588, 0.2254, 0.1779, 0.1727]
RUN_999_FIXED = "0.66796875-0.1484375-0.046875-0.04296875-0.04296875-0.02734375-0.0234375"
STEPS = [
    10000,
    12000,
    13000,
    14000,
    16000,
    18000,
    20000,
    22000,
    24000,
    27000,
    30000,
    40000,
    50000,
    60000,
    70000,
    80000,
    90000,
    100000,
]


def manifest_rows(data: Path, family: str) -> list[dict]:
    """Held-out 1B runs of a family with their (fixed) mixture and the steps to predict."""
    manifest = pd.read_csv(data / "heldout_manifest.csv", dtype={"run": str})
    out = []
    for _, row in manifest[manifest["family"] == family].iterrows():
        raw = row["proportions_raw"]
        note = ""
        if family == "RedPajama" and row["run"] == "999":
            raw, note = RUN_999_FIXED, "C4 share read as 0.1484375 (typo 0.168375 in the run name)"
        x = np.array([float(v) for v in raw.split("-")])
        if abs(x.sum() - 1) > 1e-6:
            note = (note + "; " if note else "") + f"renormalized from sum {x.sum():.6f}"
            x = x / x.sum()
        steps = [s for s in STEPS if row["min_step"] <= s <= row["max_step"]]
        out.append(
            {"run": row["run"], "mixture": x, "steps": steps, "n_steps": int(row["n_steps"]), "note": note}
        )
    return out


def predict_heldout(result, rows: list[dict], columns: list[str], targets: list[str], weights) -> list[dict]:
    """1B predictions at each needed step: direct extrapolation for observed mixtures, else the mixing law."""
    steps = sorted({s for r in rows for s in r["steps"]})
    gw = weights.group_weight
    out = []
    for step in steps:
        frame = result.extrapolate(step)
        law = result.mixing_law_at(step)
        for r in rows:
            if step not in r["steps"]:
                continue
            via_law = law.predict(r["mixture"][None])
            entry = {
                "run": r["run"],
                "step": step,
                "mixture": dict(zip(columns, r["mixture"].tolist())),
                "note": r["note"],
                "mixing_law": {k: float(v[0]) for k, v in via_law.items()},
            }
            match = frame[np.abs(frame[columns].to_numpy() - r["mixture"]).sum(axis=1) < 1e-4]
            if len(match):
                direct = {t: float(match[t].iloc[0]) for t in targets}
                direct["total"] = float(sum(gw[t] * direct[t] for t in targets))
                entry["direct"] = direct
                entry["observed_mixture_run"] = str(match["run"].iloc[0])
            entry["predicted_total"] = entry.get("direct", entry["mixing_law"])["total"]
            out.append(entry)
    return out


def run_family(name: str, path: Path, data: Path, target_steps: list[int], law: str, scale: str, log) -> dict:
    table = read_runs(path, renormalize=True)
    weights = load_weights(str(data / "valid_weights.csv"), table.valid_domains, "pile_category")
    started, cpu_started = time.perf_counter(), time.process_time()
    config = PipelineConfig(target_params=TARGET_1B, target_step=max(target_steps), law=law, scale=scale)
    result = run_pipeline(table, weights, config, log=lambda m: log(f"{name} {scale}: {m}"))
    pipeline_seconds = time.perf_counter() - started
    pipeline_cpu_seconds = time.process_time() - cpu_started
    columns = table.domain_columns
    family = "RedPajama" if name == "redpajama" else "5Mix"
    rows = manifest_rows(data, family)
    if family == "5Mix":
        for r in rows:
            r["steps"] = [s for s in r["steps"] if s in target_steps] or r["steps"][:1]
    heldout = predict_heldout(result, rows, columns, list(weights.groups), weights)
    out = {
        "pipeline_seconds": pipeline_seconds,
        "pipeline_cpu_seconds": pipeline_cpu_seconds,
        "timings": result.timings,
        "law": result.law.law.name,
        "checks": result.checks,
        "defaults": result.defaults,
        "runs": result.runs,
        "heldout_1b": heldout,
    }
    if family == "RedPajama":
        base = [r for r in rows if r["run"] == "999"][0]["mixture"]
        t0 = time.perf_counter()
        opt = optimize(
            result.law,
            bounds={c: (0.0, cap) for c, cap in zip(columns, RP_CAPS)},
            baseline=base,
            baseline_name="run 999 (paper default, C4 fixed)",
        )
        out["optimum"] = opt
        out["optimize_seconds"] = time.perf_counter() - t0
    out["total_seconds"] = time.perf_counter() - started
    out["total_cpu_seconds"] = time.process_time() - cpu_started
    return out


def repo_relative(path: Path) -> str:
    """`path` relative to the repository (no absolute machine paths in the results)."""
    return Path(os.path.relpath(path.resolve(), REPO)).as_posix()


def run_cli(data: Path, law: str, log) -> dict:
    """The whole `mixlaw pipeline` command on RedPajama (the documented one, docs/pipeline.md), in this process."""
    from mixlaw.cli.main import main as mixlaw_main

    rel = repo_relative(data)
    args = ["--target-params", str(TARGET_1B), "--target-step", "100000", "--group", "pile_category"]
    args += ["--renormalize", "--law", law, "-q"]
    with tempfile.TemporaryDirectory() as folder:
        started, cpu_started = time.perf_counter(), time.process_time()
        code = mixlaw_main(
            ["pipeline", str(data / "redpajama.csv"), "--valid-weights", str(data / "valid_weights.csv")]
            + args
            + ["--out", folder]
        )
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        optimum = json.loads((Path(folder) / "optimum.json").read_text())
        fitted = json.loads((Path(folder) / "law.json").read_text())
    log(f"mixlaw pipeline (RedPajama): {wall:.1f} s wall, {cpu:.1f} CPU-s, exit {code}")
    return {
        "command": f"mixlaw pipeline {rel}/redpajama.csv --valid-weights {rel}/valid_weights.csv "
        + " ".join(args)
        + " --out DIR",
        "exit_code": code,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "law": fitted["auto"]["chosen"] if "auto" in fitted else fitted["law"],
        "optimum": {
            k: optimum[k] for k in ("mixture", "predicted", "gain", "recommendation") if k in optimum
        },
        "optimum_intervals": (optimum.get("uncertainty") or {}).get("mixture"),
    }


def reference_table(data: Path, results: dict) -> pd.DataFrame:
    ref = pd.read_csv(data / "redpajama_reference_predictions.csv", dtype={"run": str})
    ref = ref[ref["model_size"] == "1B"]
    rows = []
    for scale, res in results.items():
        for entry in res["heldout_1b"]:
            if entry["step"] != 100000:
                continue
            source = entry.get("direct", entry["mixing_law"])
            for group in ["full", "academic", "prose", "dialogue", "symbolic", "internet"]:
                r = ref[(ref["run"] == entry["run"]) & (ref["valid_group"] == group)]
                ours = source["total" if group == "full" else group]
                rows.append(
                    {
                        "scale": scale,
                        "run": entry["run"],
                        "group": group,
                        "ours": ours,
                        "reference": float(r["predicted"].iloc[0]) if len(r) else np.nan,
                    }
                )
    frame = pd.DataFrame(rows)
    frame["diff_rel"] = frame["ours"] / frame["reference"] - 1
    return frame


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=here.parent.parent / "shared" / "data" / "mixinglaws")
    parser.add_argument("--out", type=Path, default=here / "results")
    parser.add_argument("--law", default="auto", help="mixing law (default: chosen by cross-validation)")
    parser.add_argument("--skip-5mix", action="store_true")
    parser.add_argument(
        "--skip-cli", action="store_true", help="do not time the whole `mixlaw pipeline` command"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    if not (args.data / "redpajama.csv").exists():
        print(f"data not found in {args.data} (use --data)", file=sys.stderr)
        return 2

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    report: dict = {"data": repo_relative(args.data)}
    rp = {
        scale: run_family("redpajama", args.data / "redpajama.csv", args.data, [100000], args.law, scale, log)
        for scale in ("chain", "joint")
    }
    report["redpajama"] = rp
    if not args.skip_5mix:
        report["5mix"] = {
            scale: run_family(
                "5mix", args.data / "5mix.csv", args.data, [20000, 30000, 100000], args.law, scale, log
            )
            for scale in ("chain", "joint")
        }
    if not args.skip_cli:
        report["cli"] = run_cli(args.data, args.law, log)
    compare = reference_table(args.data, rp)
    report["reference_comparison"] = compare.to_dict(orient="records")
    dump_json(report, args.out / "redpajama_pipeline.json")

    print("== RedPajama: stage checks (mean / max relative error of the Pile-weighted total) ==")
    for scale, res in rp.items():
        print(
            f"{scale}: pipeline {res['pipeline_seconds']:.1f} s, {res['pipeline_cpu_seconds']:.1f} CPU-s "
            f"(all fits and checks), law {res['law']}"
        )
        for stage in ("step", "step_beyond", "size", "chain"):
            c = res["checks"].get(stage)
            if c and "mean_rel" in c:
                print(
                    f"  {stage:<12} {100 * c['mean_rel']:.3f}% / {100 * c['max_rel']:.3f}%  n={c['n']}  {c['what']}"
                )
    print("\n== RedPajama 1B at 100k steps: ours vs the reference pipeline (predicted) ==")
    print(
        compare.pivot_table(index=["run", "group"], columns="scale", values=["ours", "diff_rel"])
        .round(4)
        .to_string()
    )
    for scale, res in rp.items():
        opt = res["optimum"]
        print(f"\n== optimum under the paper's caps ({scale}, {res['optimize_seconds']:.2f} s) ==")
        print("  " + ", ".join(f"{k[2:]}={v:.4f}" for k, v in opt["mixture"].items()))
        print(
            f"  predicted total {opt['predicted']['total']:.4f}; baseline run 999 "
            f"{opt['baseline']['predicted']['total']:.4f}; equivalent_extra_steps {opt['equivalent_extra_steps']}; "
            f"L1 to nearest observed {opt['distance_to_observed']['l1']:.3f}"
        )
    if "5mix" in report:
        print("\n== 5Mix ==")
        for scale, res in report["5mix"].items():
            print(
                f"{scale}: pipeline {res['pipeline_seconds']:.1f} s, {res['pipeline_cpu_seconds']:.1f} CPU-s, "
                f"law {res['law']}"
            )
            for stage in ("step", "step_beyond", "size", "chain"):
                c = res["checks"].get(stage)
                if c and "mean_rel" in c:
                    print(f"  {stage:<12} {100 * c['mean_rel']:.3f}% / {100 * c['max_rel']:.3f}%  n={c['n']}")
            for e in res["heldout_1b"]:
                print(
                    f"  1B run {e['run']:>4} step {e['step']:>6}: {e['predicted_total']:.4f}"
                    + (" (direct)" if "direct" in e else " (mixing law)")
                )
    print("\n== RedPajama held-out 1B predictions (Pile-weighted total) ==")
    for scale, res in rp.items():
        for e in res["heldout_1b"]:
            print(
                f"  {scale:<5} run {e['run']:>4} step {e['step']:>6}: {e['predicted_total']:.4f}"
                + (" (direct)" if "direct" in e else " (mixing law)")
            )
    if "cli" in report:
        cli = report["cli"]
        print(f"\n== {cli['command']} ==")
        print(f"  {cli['wall_seconds']:.1f} s wall, {cli['cpu_seconds']:.1f} CPU-s, law {cli['law']}")
    print(f"\nwrote {args.out / 'redpajama_pipeline.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
