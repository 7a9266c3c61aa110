"""CLI start-up cost: CPU seconds (user + sys) of `python -m mixlaw ...` for the commands that should start fast.

Each command runs `--repeats` times in a fresh interpreter; the table shows the median, min and max, and whether
pandas was imported (it should not be for these commands: `mixlaw.cli.common.defer_imports`).

    python benchmarks/startup_time.py                       # -> benchmarks/results/startup_time.json
    python benchmarks/startup_time.py --repeats 11

Run it on a quiet machine: CPU time is less sensitive to load than wall time, but not immune.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OPT = ROOT / "tests" / "golden" / "export_opt.json"
COMMANDS = {
    "mixlaw --help": ["--help"],
    "mixlaw laws": ["laws"],
    "mixlaw export OPT.json --format json": ["export", str(OPT), "--format", "json"],
}
# Runs the CLI like `python -m mixlaw`, then reports whether pandas was really imported.
PROBE = (
    "import sys, runpy; sys.argv = ['mixlaw'] + sys.argv[1:]\n"
    "try:\n    runpy.run_module('mixlaw', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "sys.stderr.write('PANDAS=%d\\n' % ('pandas.core' in sys.modules))\n"
)


def cpu_seconds(args: list[str]) -> tuple[float, bool]:
    """CPU time of one run of the CLI with `args`, and whether it imported pandas."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, cwd=ROOT, check=False
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return used, "PANDAS=1" in done.stderr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "startup_time.json"))
    args = parser.parse_args()
    rows = []
    for name, argv in COMMANDS.items():
        runs = [cpu_seconds(argv) for _ in range(args.repeats)]
        times = [t for t, _ in runs]
        rows.append(
            {
                "command": name,
                "median_cpu_s": round(statistics.median(times), 3),
                "min_cpu_s": round(min(times), 3),
                "max_cpu_s": round(max(times), 3),
                "repeats": args.repeats,
                "imports_pandas": any(p for _, p in runs),
            }
        )
    print(f"{'command':42s} {'median':>8s} {'min':>7s} {'max':>7s}  pandas")
    for r in rows:
        print(
            f"{r['command']:42s} {r['median_cpu_s']:8.3f} {r['min_cpu_s']:7.3f} {r['max_cpu_s']:7.3f}  "
            f"{'yes' if r['imports_pandas'] else 'no'}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": sys.version.split()[0], "rows": rows}, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
