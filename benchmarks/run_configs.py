"""The embedded `mixlaw run` configs, validated: verdict, predicted gain [90% interval], measured gain, levels.

    python benchmarks/run_configs.py                       # runs --quick, the default and cpu-large (long)
    python benchmarks/run_configs.py --only quick default   # a subset
    python benchmarks/run_configs.py --results quick=DIR    # summarize an existing results folder, no training

Each config is run (or resumed: `mixlaw run` skips finished runs) into `--out/NAME`; the table is read from its
`validation.json`, `optimum.json` and `confirm.json`. Issue 15's targets: no claimed win that measures as a
loss; the measured gain inside the predicted 90% interval on at least 2 of 3; the optimum's loss within 5%.
Writes benchmarks/results/run_configs.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from mixlaw.confirm import shrinking_gain

HERE = Path(__file__).resolve().parent
CONFIGS = {
    "quick": ["--quick"],
    "default": [],
    "cpu-large": [str(HERE.parent / "configs" / "cpu-large.yaml")],
}


def run_config(name: str, out: Path, workers: int) -> float:
    """Run (or resume) one config; returns the CPU-seconds of the job's processes."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = [
        sys.executable,
        "-m",
        "mixlaw",
        "run",
        *CONFIGS[name],
        "--out",
        str(out),
        "--workers",
        str(workers),
    ]
    subprocess.run(cmd, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def summarize(name: str, folder: Path, cpu_seconds: float | None = None) -> dict[str, Any]:
    """One row from a `mixlaw run` folder; a folder stopped before the validation gives the pipeline's
    recommendation and the rungs only (measured fields None)."""
    optimum = json.loads((folder / "optimum.json").read_text())
    confirm_path, validation_path = folder / "confirm.json", folder / "validation.json"
    confirm = json.loads(confirm_path.read_text()) if confirm_path.is_file() else None
    validation = json.loads(validation_path.read_text()) if validation_path.is_file() else None
    gain = optimum.get("gain") or {}
    rec = optimum.get("recommendation") or {}
    lo, hi = gain.get("lo"), gain.get("hi")
    row: dict[str, Any] = {
        "config": name,
        "recommendation": rec.get("verdict"),
        "confirmation": None if confirm is None else confirm.get("verdict"),
        "rungs": None if confirm is None else confirm.get("rungs"),
        "rung_warnings": None if confirm is None else shrinking_gain(confirm.get("rungs") or []),
        "predicted_gain": gain.get("value"),
        "gain_lo": lo,
        "gain_hi": hi,
        "optimum_predicted": optimum["predicted"].get("objective"),
        "validated": validation is not None,
        "cpu_seconds": cpu_seconds,
    }
    if validation is None:
        return row
    measured = validation["gain"]["measured"]
    paired = validation["gain"].get("paired") or {}
    opt = validation["arms"]["optimum"]
    verdict = validation["verdict"]
    row.update(
        claimed=bool(verdict.get("claimed", verdict["result"] == "win")),
        validation=verdict["result"],
        measured_gain=measured,
        measured_gain_paired_sd=paired.get("std"),
        seed_sd_pooled=validation["gain"]["sigma_pooled"],
        inside=None if lo is None else bool(lo <= measured <= hi),
        optimum_measured=opt["measured"]["mean"],
        optimum_rel_error=opt["rel_error"],
        claimed_win_measured_as_loss=bool(verdict.get("claimed") and measured < 0),
        timings=validation.get("timings"),
    )
    recommended = validation.get("recommended")
    if recommended:  # a fallback the rungs claimed, measured at the target: the claim is its result
        row.update(
            claimed_arm=recommended["arm"],
            claimed_arm_measured_gain=recommended["gain"]["measured"],
            claimed_arm_paired_sd=recommended["gain"]["paired"]["std"],
            claimed_arm_inside_anchored=(recommended["gain"].get("anchored") or {}).get("inside"),
            claimed_win_measured_as_loss=bool(verdict.get("claimed") and recommended["gain"]["measured"] < 0),
        )
    anchored = validation["gain"].get("anchored") or {}
    row.update(
        anchored_gain=anchored.get("value"),
        anchored_lo=anchored.get("measured_lo"),
        anchored_hi=anchored.get("measured_hi"),
        anchored_p=anchored.get("p_beats_baseline"),
        inside_anchored=anchored.get("inside"),
        optimum_anchored=anchored.get("optimum_predicted"),
        optimum_anchored_rel_error=anchored.get("optimum_rel_error"),
    )
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'config':<10} {'verdict':<9} {'rungs':<9} {'predicted gain [90%]':<26} {'anchored [90%]':<26} "
        f"{'measured ± sd':<18} {'inside':<13} {'opt. rel err':>15}"
    )
    for r in rows:
        interval = f"{r['predicted_gain']:+.3f} [{r['gain_lo']:+.3f}, {r['gain_hi']:+.3f}]"
        anchored = "-"
        if r.get("anchored_gain") is not None:
            anchored = f"{r['anchored_gain']:+.3f} [{r['anchored_lo']:+.3f}, {r['anchored_hi']:+.3f}]"
        if not r["validated"]:
            measured, inside, error = "not validated", "-", "-"
        else:
            sd = r["measured_gain_paired_sd"] or 0.0
            measured = f"{r['measured_gain']:+.3f} ± {sd:.3f}"
            inside = f"{r['inside']}/{r.get('inside_anchored')}"
            error = f"{r['optimum_rel_error']:+.2%}"
            if r.get("optimum_anchored_rel_error") is not None:
                error += f"/{r['optimum_anchored_rel_error']:+.2%}"
        print(
            f"{r['config']:<10} {r['recommendation'] or '-':<9} {r['confirmation'] or '-':<9} {interval:<26} "
            f"{anchored:<26} {measured:<18} {inside:<13} {error:>15}"
        )
    print("inside and the optimum's loss error: the pipeline's prediction / the one anchored on the rungs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--out", type=Path, default=Path("mixlaw-out/run-configs"))
    parser.add_argument(
        "--results", nargs="*", default=[], metavar="NAME=DIR", help="existing results folders"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "run_configs.json")
    args = parser.parse_args(argv)
    given = dict(item.split("=", 1) for item in args.results)
    rows = []
    for name in args.only:
        if name in given:
            rows.append(summarize(name, Path(given[name])))
        else:
            cpu = run_config(name, args.out / name, args.workers)
            rows.append(summarize(name, args.out / name, cpu))
    print_table(rows)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
