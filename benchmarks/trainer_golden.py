"""Byte-identity check of the training loop: tiny runs through every branch of `train_run`, hashed.

    PYTHONPATH=$PWD python benchmarks/trainer_golden.py           # prints a table, writes benchmarks/results/trainer_golden.json
    PYTHONPATH=$PWD python benchmarks/trainer_golden.py --check   # retrains and compares with that JSON (exit 1 if any differs)

Cases: constant LR, WSD (cooldown branches), a two-stage schedule, `init_from` another run's weights, a constant
and a WSD run interrupted after a checkpoint (`stop_after`) and resumed, and a DDP run of world size 1 (gloo).
For each run it records the sha256 of `result.csv`, of the tensors and metadata of `model.safetensors` (final
weights), of the rows that `train_run` returns, and the deterministic fields of the final `progress.json`; for
each interruption the rows, tensors and metadata of the checkpoint but its wall-clock `elapsed`.
A refactor of the loop must leave every hash unchanged. Runs on CPU with one thread in ~20 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "trainer_golden.json"

CONFIG = {
    "corpus": {
        "demo": {"max_bytes": 40_000, "math_tokens": 15_000, "tokenizer": "bytes", "valid_fraction": 0.2}
    },
    "mixtures": [{"code": 0.5, "docs": 0.25, "math-prose": 0.125, "math": 0.125}],
    "schedules": [
        [
            {"share": 0.5, "mixture": {"code": 0.7, "docs": 0.1, "math-prose": 0.1, "math": 0.1}},
            {"share": 0.5, "mixture": {"code": 0.1, "docs": 0.3, "math-prose": 0.3, "math": 0.3}},
        ]
    ],
    "models": ["L1-D32"],
    "steps": 30,
    "seeds": [0],
    "training": {
        "batch_size": 4,
        "seq_len": 32,
        "warmup_steps": 3,
        "eval_points": 3,
        "eval_tokens": 512,
        "checkpoint_every": 5,
        "save_model": True,
        "device": "cpu",
    },
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _frame_hash(frame) -> str:
    return _sha(frame.to_csv(index=False, float_format="%.17g").encode())


def _record(run_dir: Path, frame) -> dict:
    progress = json.loads((run_dir / "progress.json").read_text())
    return {
        "result_csv": _sha((run_dir / "result.csv").read_bytes()),
        "model": _tensors_hash(run_dir / "model.safetensors"),
        "model_file": _sha((run_dir / "model.safetensors").read_bytes()),
        "returned_rows": _frame_hash(frame),
        "rows": len(frame),
        "progress": {k: progress.get(k) for k in ("status", "step", "steps", "work_done", "work_planned")},
        "checkpoint_left": (run_dir / "checkpoint.safetensors").exists(),
    }


def _tensors_hash(path: Path, skip_meta: tuple[str, ...] = ()) -> str:
    """sha256 of a safetensors file's tensors (name, dtype, shape, bytes) and metadata, in sorted order.

    Not of the file's bytes: safetensors writes its metadata map in an order that varies between calls."""
    from safetensors import safe_open

    digest = hashlib.sha256()
    with safe_open(str(path), framework="pt") as fh:
        meta = {k: v for k, v in (fh.metadata() or {}).items() if k not in skip_meta}
        digest.update(json.dumps(meta, sort_keys=True).encode())
        for key in sorted(fh.keys()):
            t = fh.get_tensor(key)
            digest.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode() + t.numpy().tobytes())
    return digest.hexdigest()[:16]


def _checkpoint_record(path: Path, frame) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
    return {
        "step": int(meta["step"]),
        "rows": _sha(meta["rows"].encode()),
        "tensors_and_metadata": _tensors_hash(path, skip_meta=("elapsed",)),
        "returned_rows": _frame_hash(frame),
    }


def run_cases(work: Path) -> dict:
    from mixlaw.train.ddp import train_run_ddp
    from mixlaw.train.spec import resolve_init
    from mixlaw.train.sweep import parse_sweep_config, prepare_sweep
    from mixlaw.train.trainer import train_run

    cfg = parse_sweep_config(CONFIG, "golden")
    _, (constant, staged) = prepare_sweep(cfg, cache_dir=work / "cache")
    wsd = replace(constant, settings=replace(constant.settings, schedule="wsd", cooldown_fraction=0.25))
    out: dict = {}

    def train(name: str, spec, **kw) -> Path:
        run_dir = work / name
        t0 = time.time()
        frame = train_run(spec, run_dir, **kw)
        out[name] = {"run_id": spec.run_id, **_record(run_dir, frame), "_seconds": time.time() - t0}
        return run_dir

    base_dir = train("constant", constant)
    train("wsd", wsd)
    train("staged", staged)
    init_file, init_id, _ = resolve_init(base_dir / "model.safetensors")
    train("init_from", replace(constant, steps=20, init_from=init_file, init_id=init_id))
    for name, spec, stop in (("resume_constant", constant, 12), ("resume_wsd", wsd, 17)):
        run_dir = work / name
        frame = train_run(spec, run_dir, stop_after=stop)
        interrupted = _checkpoint_record(run_dir / "checkpoint.safetensors", frame)
        train(name, spec)
        out[name]["interrupted"] = interrupted
    ddp_dir, t0 = work / "ddp1", time.time()
    frame = train_run_ddp(constant, ddp_dir, backend="gloo")
    out["ddp1"] = {"run_id": constant.run_id, **_record(ddp_dir, frame), "_seconds": time.time() - t0}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare with the stored JSON instead of writing it")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mixlaw-golden-") as tmp:
        got = run_cases(Path(tmp))
    timings = {k: round(v.pop("_seconds", 0.0), 2) for k, v in got.items()}
    print(f"{'case':<16} {'run id':<17} {'rows':>4} {'result.csv':<17} {'model':<17} seconds")
    for name, rec in got.items():
        print(
            f"{name:<16} {rec['run_id']:<17} {rec['rows']:>4} {rec['result_csv']:<17} {rec['model']:<17} "
            f"{timings.get(name, 0.0):.2f}"
        )
    for name in ("resume_constant", "resume_wsd"):
        plain = "constant" if name == "resume_constant" else "wsd"
        same = all(got[name][k] == got[plain][k] for k in ("result_csv", "model", "returned_rows"))
        print(f"{name}: resumed run {'identical to' if same else 'DIFFERS from'} the uninterrupted one")
    if not args.check:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"cases": got}, indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.out}")
        return 0
    want = json.loads(args.out.read_text())["cases"]
    diffs = [
        f"{name}.{key}: {want.get(name, {}).get(key)!r} -> {rec.get(key)!r}"
        for name, rec in got.items()
        for key in sorted(set(rec) | set(want.get(name, {})))
        if rec.get(key) != want.get(name, {}).get(key)
    ]
    diffs += [f"{name}: missing" for name in want if name not in got]
    print("\n".join(diffs) if diffs else f"identical to {args.out.name}: {len(got)} cases")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
