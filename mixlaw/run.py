"""The end-to-end job (`mixlaw run`): design -> proxy sweep -> pipeline -> optimum -> validation at the target scale.

Stages, each resumable (rerunning the same command skips finished runs and resumes interrupted ones):

1. corpus: build (or reuse from the cache) the corpus; its training token counts are the availability numbers.
2. proxies: the designed mixtures (plus the baseline mixture) x the proxy sizes x seeds, trained as one sweep
   into `DIR/proxies/` (its runs table is copied to `DIR/runs.csv`).
3. pipeline: step laws, size laws, the mixing law at the target scale, the optimum under availability
   (`mixlaw.pipeline`, `mixlaw.optimize`); cached in `DIR/run.json` by the hash of its inputs.
4. validation: the target-size model on the optimum and on the baseline mixture (natural token proportions by
   default), >= 3 seeds each, into `DIR/validation/`. The baseline runs continue past the target steps
   (`baseline_steps`, default 1.5x) so that the steps it needs to match the optimum are measured, not guessed.
5. summary: `validation.json`, `validation.csv`, `summary.md` (the validation verdict first, then the pipeline
   summary) and `report.html`.

The verdict: a win (or a loss) is claimed only when the seed-mean difference at the target steps exceeds two
pooled seed standard deviations; otherwise the summary says the difference is within noise.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from mixlaw.errors import MixlawInputError
from mixlaw.files import atomic_write, dump_json, locked, read_yaml
from mixlaw.mixture import Domains, Mixture, canonical_name
from mixlaw.runs import (
    PROPORTION_PREFIX,
    TRAINER_FLOAT_FORMAT,
    aggregate,
    load_weights,
    read_runs,
    write_runs,
)

RUN_KEYS = {"proxies", "target", "pipeline", "optimize", "validate", "quick", "workers"}
SHARED_KEYS = {"corpus", "train_domains", "valid_domains", "training"}
PROXY_KEYS = {"models", "steps", "seeds", "seed", "design", "mixtures", "include_baseline"}
TARGET_KEYS = {"model", "steps", "lr"}
PIPELINE_KEYS = {
    "law",
    "scale_law",
    "cv",
    "valid_weights",
    "group",
    "min_sizes",
    "step_share",
    "size_share",
    "huber_delta",
    "step_exponent",
    "size_exponent",
}
OPTIMIZE_KEYS = {"max_epochs", "bounds", "fixed", "objective", "baseline", "max_distance", "bootstrap"}
VALIDATE_KEYS = {"seeds", "baseline_steps", "eval_fractions"}
DEFAULT_EVAL_FRACTIONS = (0.25, 0.5, 0.75, 1.0, 1.125, 1.25, 1.375, 1.5, 1.75, 2.0)
NOISE_SIGMAS = 2.0


def default_config_path(quick: bool = False) -> Path:
    """The embedded config: `run-quick.yaml` with --quick, else `run-default.yaml`."""
    name = "run-quick.yaml" if quick else "run-default.yaml"
    return Path(str(resources.files("mixlaw") / "configs" / name))


# --------------------------------------------------------------------------------------------- config


@dataclass
class RunConfig:
    """A parsed `mixlaw run` config (see docs/run.md); `raw` is the resolved YAML written to DIR/config.yaml."""

    raw: dict
    path: str
    sweep: Any  # mixlaw.train.sweep.SweepConfig of the proxies
    include_baseline: bool
    target_layers: int
    target_width: int
    target_heads: int
    target_steps: int
    target_lr: float | None
    pipeline: dict = field(default_factory=dict)
    optimize: dict = field(default_factory=dict)
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    baseline_steps: float = 1.5
    eval_fractions: tuple[float, ...] = DEFAULT_EVAL_FRACTIONS
    workers: int | None = None

    @property
    def target_label(self) -> str:
        return f"L{self.target_layers}-D{self.target_width}"


def _merge(base: dict, over: dict) -> dict:
    """Deep merge of mappings (`over` wins; lists are replaced)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = (
            _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
        )
    return out


def load_run_config(path: str | Path | None = None, quick: bool = False) -> RunConfig:
    """Read a run config (None = the embedded default). `quick` applies the config's `quick:` overrides, or
    selects the embedded quick config when no path is given."""
    if path is None:
        path = default_config_path(quick)
        quick = False
    path = Path(path)
    raw = read_yaml(path, "run config")
    if not isinstance(raw, dict):
        raise MixlawInputError(f"{path}: expected a mapping with corpus, proxies, target, ...")
    if quick:
        over = raw.get("quick")
        if not isinstance(over, dict):
            raise MixlawInputError(f"{path}: --quick needs a `quick:` block of overrides in the config")
        raw = _merge(raw, over)
    raw.pop("quick", None)
    return parse_run_config(raw, str(path), base_dir=path.parent)


def _check_keys(block: object, allowed: set[str], where: str) -> dict:
    if block is None:
        return {}
    if not isinstance(block, dict):
        raise MixlawInputError(f"{where}: expected a mapping (allowed keys: {sorted(allowed)})")
    bad = set(block) - allowed
    if bad:
        raise MixlawInputError(f"{where}: unknown key(s) {sorted(bad)} (allowed: {sorted(allowed)})")
    return block


def _model(value: object, where: str) -> dict:
    import re

    if isinstance(value, str):
        m = re.fullmatch(r"L(\d+)-D(\d+)", value.strip())
        if not m:
            raise MixlawInputError(f"{where}: {value!r} is not a label like L4-D128")
        return {"layers": int(m.group(1)), "width": int(m.group(2)), "heads": 0}
    if isinstance(value, dict):
        bad = set(value) - {"layers", "width", "heads"}
        if bad:
            raise MixlawInputError(f"{where}: unknown key(s) {sorted(bad)} (allowed: layers, width, heads)")
        for k in ("layers", "width"):
            if not isinstance(value.get(k), int) or isinstance(value.get(k), bool) or value[k] < 1:
                raise MixlawInputError(f"{where}.{k}: {value.get(k)!r} must be a positive integer")
        heads = value.get("heads", 0)
        eff = heads or max(1, value["width"] // 32)
        if not isinstance(heads, int) or heads < 0 or value["width"] % eff:
            raise MixlawInputError(f"{where}.heads: width {value['width']} is not divisible by {eff} heads")
        return {"layers": value["layers"], "width": value["width"], "heads": heads}
    raise MixlawInputError(f"{where}: expected a label like L4-D128 or {{layers: 4, width: 128}}")


def _number(
    block: dict,
    key: str,
    where: str,
    default: float | None,
    lo: float = 0.0,
    integer: bool = False,
    allow_none: bool = False,
) -> Any:
    v = block.get(key, default)
    if v is None and allow_none:
        return None
    ok = isinstance(v, int) if integer else isinstance(v, (int, float))
    if not ok or isinstance(v, bool) or not math.isfinite(float(v)) or v <= lo:
        kind = "an integer" if integer else "a number"
        raise MixlawInputError(f"{where}.{key}: {v!r} must be {kind} > {lo:g}")
    return v


def parse_run_config(raw: dict, where: str = "run config", base_dir: str | Path = ".") -> RunConfig:
    """Validate a run config mapping; every error is one line naming the file, key and value."""
    from mixlaw.train.sweep import parse_sweep_config

    unknown = set(raw) - RUN_KEYS - SHARED_KEYS
    if unknown:
        raise MixlawInputError(
            f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(RUN_KEYS | SHARED_KEYS)})"
        )
    proxies = _check_keys(raw.get("proxies"), PROXY_KEYS, f"{where}: proxies")
    if not proxies:
        raise MixlawInputError(f"{where}: proxies: missing (models, steps, design or mixtures)")
    sweep_raw = {k: raw[k] for k in SHARED_KEYS if k in raw}
    sweep_raw.update({k: v for k, v in proxies.items() if k != "include_baseline"})
    sweep = parse_sweep_config(sweep_raw, f"{where}: proxies", base_dir=base_dir)
    if len(sweep.models) < 2:
        raise MixlawInputError(f"{where}: proxies.models: give at least 2 sizes (3 or more for the size law)")
    target = _check_keys(raw.get("target"), TARGET_KEYS, f"{where}: target")
    if "model" not in target or "steps" not in target:
        raise MixlawInputError(f"{where}: target: needs model (e.g. L4-D128) and steps")
    shape = _model(target["model"], f"{where}: target.model")
    steps = _number(target, "steps", f"{where}: target", None, integer=True)
    lr = _number(target, "lr", f"{where}: target", None, allow_none=True)
    pipe = _check_keys(raw.get("pipeline"), PIPELINE_KEYS, f"{where}: pipeline")
    if pipe.get("law", "auto") not in (None, "auto"):
        from mixlaw.laws import LAWS

        if pipe["law"] not in LAWS:
            raise MixlawInputError(
                f"{where}: pipeline.law: unknown law {pipe['law']!r}; available: auto, {', '.join(LAWS)}"
            )
    if pipe.get("scale_law", "chain") not in ("chain", "joint"):
        raise MixlawInputError(f"{where}: pipeline.scale_law: {pipe['scale_law']!r} is not chain or joint")
    opt = _check_keys(raw.get("optimize"), OPTIMIZE_KEYS, f"{where}: optimize")
    _number(opt, "max_epochs", f"{where}: optimize", 4.0)
    for key in ("bounds", "fixed"):
        if opt.get(key) is not None and not isinstance(opt[key], dict):
            raise MixlawInputError(f"{where}: optimize.{key}: expected a mapping domain -> value")
    known = Domains(sweep.train_domains)  # either spelling: math-prose or math_prose
    for d, b in (opt.get("bounds") or {}).items():
        if known.find(d) is None:
            raise MixlawInputError(
                f"{where}: optimize.bounds: unknown domain {d!r} (training domains: {sweep.train_domains})"
            )
        if not (
            isinstance(b, list) and len(b) == 2 and all(x is None or isinstance(x, (int, float)) for x in b)
        ):
            raise MixlawInputError(
                f"{where}: optimize.bounds.{d}: {b!r} must be [lower, upper] (null = 0 or 1)"
            )
    for d in opt.get("fixed") or {}:
        if known.find(d) is None:
            raise MixlawInputError(
                f"{where}: optimize.fixed: unknown domain {d!r} (training domains: {sweep.train_domains})"
            )
    base = opt.get("baseline", "natural")
    if not (base in ("natural", "uniform") or isinstance(base, dict)):
        raise MixlawInputError(
            f"{where}: optimize.baseline: {base!r} must be natural, uniform or a mixture mapping"
        )
    if isinstance(base, dict):
        from mixlaw.train.design import check_mixture

        check_mixture(base, sweep.train_domains, f"{where}: optimize.baseline")
    val = _check_keys(raw.get("validate"), VALIDATE_KEYS, f"{where}: validate")
    seeds = val.get("seeds", [0, 1, 2])
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        seeds = list(range(seeds))
    if (
        not isinstance(seeds, list)
        or len(set(seeds)) < 3
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise MixlawInputError(
            f"{where}: validate.seeds: {seeds!r} must list at least 3 distinct integer seeds "
            "(or be a count >= 3)"
        )
    bsteps = float(_number(val, "baseline_steps", f"{where}: validate", 1.5))
    if bsteps < 1:
        raise MixlawInputError(
            f"{where}: validate.baseline_steps: {bsteps!r} must be >= 1 (a multiple of target.steps)"
        )
    fractions = val.get("eval_fractions", list(DEFAULT_EVAL_FRACTIONS))
    if not isinstance(fractions, list) or not all(isinstance(f, (int, float)) and f > 0 for f in fractions):
        raise MixlawInputError(
            f"{where}: validate.eval_fractions: {fractions!r} must be positive multiples of target.steps"
        )
    workers = raw.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise MixlawInputError(f"{where}: workers: {workers!r} must be a positive integer")
    return RunConfig(
        raw=raw,
        path=where,
        sweep=sweep,
        include_baseline=bool(proxies.get("include_baseline", True)),
        target_layers=shape["layers"],
        target_width=shape["width"],
        target_heads=shape["heads"],
        target_steps=int(steps),
        target_lr=float(lr) if lr is not None else None,
        pipeline=pipe,
        optimize=opt,
        seeds=list(dict.fromkeys(seeds)),
        baseline_steps=bsteps,
        eval_fractions=tuple(sorted({float(f) for f in fractions} | {1.0})),
        workers=workers,
    )


# --------------------------------------------------------------------------------------------- helpers


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(f"run: {message}", file=sys.stderr, flush=True)


def non_embedding_params(layers: int, width: int, heads: int, vocab: int, seq_len: int) -> int:
    """Non-embedding parameters of the trainer's GPT (what the runs table's `params` column counts)."""
    import torch

    from mixlaw.train.model import GPT, GPTConfig

    with torch.device("meta"):
        model = GPT(
            GPTConfig(n_layer=layers, n_embd=width, vocab_size=vocab, block_size=seq_len, n_head=heads)
        )
    return int(model.num_params(True))


def _mixture_tuple(mix: dict[str, float], domains: list[str]) -> tuple[tuple[str, float], ...]:
    """RunSpec pairs of a mixture (or of weights: token counts, 1 each) over `domains`: shares proportional to the
    values, rounded to 6 decimals, summing to exactly 1 (the remainder goes to the largest share)."""
    known, weights = Domains(domains), dict.fromkeys(domains, 0.0)
    for name, value in mix.items():
        weights[known.resolve(name, "mixture")] += value
    return Mixture.from_weights(weights, "mixture").rounded().pairs()


def _sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
        h.update(b"\0")
    return h.hexdigest()


def _mixture_ids(proxies: list, baseline: dict[str, float] | None) -> dict[tuple, str]:
    """A short id per proxy mixture (`m01`, `m02`, ...; `baseline` for the baseline mixture), in design order."""
    ids: dict[tuple, str] = {}
    base = None
    if baseline is not None:
        domains = [d for d, _ in proxies[0].mixture]
        base = _mixture_tuple(baseline, domains)
    for r in proxies:
        if r.mixture not in ids:
            ids[r.mixture] = "baseline" if r.mixture == base else f"m{len(ids) + 1:02d}"
    return ids


def pipeline_table(frame: pd.DataFrame, proxies: list, ids: dict[tuple, str]) -> pd.DataFrame:
    """The proxies' runs table for the pipeline: `run` names the mixture (the same id at every size, as the
    pipeline expects), losses averaged over proxy seeds; `runs` lists the sweep's run ids behind each row."""
    by_run = {r.run_id: ids[r.mixture] for r in proxies}
    f = frame.copy()
    f["sweep_run"] = f["run"].astype(str)
    f["run"] = f["sweep_run"].map(by_run)
    keys = [c for c in ["run", "model", "params", "params_total", "step", "tokens"] if c in f.columns]
    keys += [c for c in f.columns if c.startswith(PROPORTION_PREFIX)] + ["valid_domain"]
    agg: dict[str, Any] = {"loss": "mean", "sweep_run": lambda x: " ".join(sorted(set(x)))}
    for c in ("bits_per_byte", "flops"):
        if c in f.columns:
            agg[c] = "mean"
    for c in ("schedule", "lr", "batch_size", "seq_len", "tokenizer", "corpus"):
        if c in f.columns:
            agg[c] = "first"
    out = f.groupby(keys, sort=False, dropna=False).agg(**{k: (k, v) for k, v in agg.items()}).reset_index()
    out.insert(
        out.columns.get_loc("valid_domain"),
        "seeds",
        f.groupby(keys, sort=False, dropna=False)["seed"].nunique().to_numpy() if "seed" in f.columns else 1,
    )
    return out.rename(columns={"sweep_run": "runs"})


def _mixtures_csv(proxies: list, ids: dict[tuple, str]) -> str:
    from mixlaw.train.corpus import column_name

    rows = {}
    for r in proxies:
        rid = ids[r.mixture]
        row = rows.setdefault(
            rid, {"run": rid, **{f"{PROPORTION_PREFIX}{column_name(d)}": p for d, p in r.mixture}, "runs": []}
        )
        row["runs"].append(r.run_id)
    frame = pd.DataFrame([{**v, "runs": " ".join(v["runs"])} for v in rows.values()])
    return frame.to_csv(index=False, float_format="%.8g")


def _longest_first(runs: list) -> list:
    """Order runs by estimated cost (params x steps), largest first, so the pool finishes together."""
    return sorted(runs, key=lambda r: -(12 * r.layers * r.width**2 + 1) * r.steps)


# --------------------------------------------------------------------------------------------- the job


def run_job(
    cfg: RunConfig,
    out_dir: str | Path,
    executor: Any = None,
    quiet: bool = False,
    command: str | None = None,
    report: bool = True,
    validation_executor: Any = None,
) -> dict[str, Any]:
    """Run (or resume) every stage into `out_dir`; returns the validation result (also in validation.json).

    `executor` trains the proxies and, unless `validation_executor` is given (e.g. torchrun for a large
    target), the validation runs; default: a local process pool with `cfg.workers` (or all cores)."""
    from mixlaw.train.sweep import (
        LocalExecutor,
        build_runs,
        prepare_sweep,
        repetition_report,
        run_sweep,
    )

    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    with locked(out / ".run.lock", busy=f"{out}: another `mixlaw run` is using this folder"):
        state_path = out / "run.json"
        state = json.loads(state_path.read_text()) if state_path.is_file() else {}
        atomic_write(out / "config.yaml", yaml.safe_dump(cfg.raw, sort_keys=False))

        # 1. corpus
        t0 = time.perf_counter()
        _say(f"[1/5] corpus {cfg.sweep.corpus.name} (built once, then cached)", quiet)
        corpus, _ = prepare_sweep(cfg.sweep)
        counts = {d: int(v) for d, v in corpus.token_counts("train").items() if d in cfg.sweep.train_domains}
        timings["corpus"] = time.perf_counter() - t0
        settings = cfg.sweep.settings
        tokens_per_step = settings.batch_size * settings.seq_len
        target_tokens = cfg.target_steps * tokens_per_step
        target_params = non_embedding_params(
            cfg.target_layers,
            cfg.target_width,
            cfg.target_heads,
            corpus.tokenizer.vocab_size,
            settings.seq_len,
        )
        baseline = _baseline_mixture(cfg, counts)

        # 2. proxies
        t0 = time.perf_counter()
        sweep_cfg = cfg.sweep
        if cfg.include_baseline:
            sweep_cfg = replace(sweep_cfg, mixtures=list(sweep_cfg.mixtures) + [dict(baseline[1])])
        proxies = build_runs(sweep_cfg, corpus)
        proxies = list({r.run_id: r for r in proxies}.values())
        if not quiet:
            for line in repetition_report(proxies, corpus)[:5]:
                _say(f"note: repeated data: {line}", quiet)
        _check_law(cfg, len({r.mixture for r in proxies}))
        own = executor is None
        if own:
            workers = cfg.workers or min(os.cpu_count() or 1, len(proxies))
            executor = LocalExecutor(workers=workers)
        try:
            n_mix = len({r.mixture for r in proxies})
            sizes = sorted(
                {r.model_label for r in proxies}, key=lambda s: [int(x) for x in s[1:].split("-D")]
            )
            _say(
                f"[2/5] proxies: {len(proxies)} runs ({n_mix} mixtures x {', '.join(sizes)} x "
                f"{len(cfg.sweep.seeds)} seed(s), {max(r.steps for r in proxies)} steps) -> {out / 'proxies'}",
                quiet,
            )
            table = run_sweep(_longest_first(proxies), out / "proxies", executor=executor, progress=not quiet)
            mixture_ids = _mixture_ids(proxies, dict(baseline[1]) if cfg.include_baseline else None)
            write_runs(pipeline_table(table, proxies, mixture_ids), out / "runs.csv", TRAINER_FLOAT_FORMAT)
            atomic_write(out / "mixtures.csv", _mixtures_csv(proxies, mixture_ids))
            timings["proxies"] = time.perf_counter() - t0

            # 3. pipeline + optimum
            t0 = time.perf_counter()
            optimum, pipe_info = _pipeline_stage(
                cfg, out, state, counts, target_params, target_tokens, baseline, command, quiet
            )
            timings["pipeline"] = time.perf_counter() - t0
            state["pipeline"] = pipe_info
            state.update(
                command=command,
                target={
                    "model": cfg.target_label,
                    "params": target_params,
                    "steps": cfg.target_steps,
                    "tokens": target_tokens,
                },
            )
            atomic_write(state_path, json.dumps(state, indent=1))

            # 4. validation
            t0 = time.perf_counter()
            opt_mix = Mixture.parse(optimum["mixture"], cfg.sweep.train_domains, "optimum").as_dict()
            specs = _validation_specs(cfg, proxies[0], opt_mix, dict(baseline[1]))
            n_seeds = len(cfg.seeds)
            _say(
                f"[4/5] validation: {cfg.target_label} ({target_params:,} params) on the optimum "
                f"({cfg.target_steps} steps) and the {baseline[0]} baseline ({_baseline_len(cfg)} steps), "
                f"{n_seeds} seeds each -> {out / 'validation'}",
                quiet,
            )
            vtable = run_sweep(
                _longest_first(specs),
                out / "validation",
                executor=validation_executor or executor,
                progress=not quiet,
            )
            timings["validation"] = time.perf_counter() - t0
        finally:
            if own:
                executor.shutdown(wait=True, cancel_futures=True)

        # 5. verdict, summary, report
        t0 = time.perf_counter()
        _say("[5/5] summary and report", quiet)
        result = measure(cfg, out, optimum, specs, baseline[0])
        result["proxies"] = {
            "runs": len(proxies),
            "mixtures": n_mix,
            "sizes": sizes,
            "steps": max(r.steps for r in proxies),
            "rows": int(len(table)),
        }
        del vtable
        dump_json(result, out / "validation.json")
        pd.DataFrame(result["per_seed"]).to_csv(out / "validation.csv", index=False, float_format="%.6g")
        pipeline_md = (out / "pipeline-summary.md").read_text()
        timings["summary"] = time.perf_counter() - t0
        result["timings"] = {**timings, "total": time.perf_counter() - started}
        (out / "summary.md").write_text(validation_markdown(result, cfg, command) + "\n" + pipeline_md)
        if report:
            t1 = time.perf_counter()
            try:
                _write_report(out, command)
            except Exception as exc:  # noqa: BLE001 - the results stand without the page
                _say(f"report not written ({type(exc).__name__}: {exc}); run `mixlaw report {out}`", quiet)
            timings["report"] = time.perf_counter() - t1
        timings["total"] = time.perf_counter() - started
        result["timings"] = timings
        dump_json(result, out / "validation.json")
        state["timings"] = timings
        state["verdict"] = result["verdict"]
        state.setdefault("invocations", []).append(
            {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command, "timings": timings}
        )
        atomic_write(state_path, json.dumps(state, indent=1))
        return result


def _check_law(cfg: RunConfig, n_mixtures: int) -> None:
    """Refuse, before any training, a named mixing law with more parameters than there are mixtures."""
    from mixlaw.laws import get_law

    name = cfg.pipeline.get("law", "auto")
    if name in (None, "auto"):
        return
    needed = get_law(name)().n_parameters(len(cfg.sweep.train_domains))
    if n_mixtures < needed:
        raise MixlawInputError(
            f"{cfg.path}: pipeline.law {name} has {needed} parameters per target but the proxies "
            f"have only {n_mixtures} mixtures; raise proxies.design.n or choose another law"
        )


def _baseline_mixture(cfg: RunConfig, counts: dict[str, int]) -> tuple[str, tuple[tuple[str, float], ...]]:
    """(name, mixture) of the validation baseline: natural token proportions by default."""
    domains = cfg.sweep.train_domains
    spec = cfg.optimize.get("baseline", "natural")
    if spec == "natural":
        return "natural (token-proportional)", _mixture_tuple({d: counts[d] for d in domains}, domains)
    if spec == "uniform":
        return "uniform", _mixture_tuple({d: 1.0 for d in domains}, domains)
    return "user", _mixture_tuple(spec, domains)


def _baseline_len(cfg: RunConfig) -> int:
    return int(math.ceil(cfg.baseline_steps * cfg.target_steps))


def _optimum_intervals(result, optimum: dict, constraints: dict, n_bootstrap: int, log) -> dict | None:
    """90% intervals on the optimum from a bootstrap of the mixing law (stored in law.json too); None when
    disabled (`optimize.bootstrap: 0`) or when too few mixtures allow it (the reason goes to the log)."""
    if not n_bootstrap or result.data is None:
        return None
    from mixlaw.uncertainty import attach, bootstrap_law, optimum_uncertainty

    try:
        ensemble = bootstrap_law(
            result.data, result.law.law.name, fitted=result.law, n_bootstrap=n_bootstrap, seed=0
        )
    except MixlawInputError as exc:
        log(f"no intervals on the optimum: {exc}")
        return None
    attach(result.law, ensemble)
    return optimum_uncertainty(
        ensemble, optimum["mixture"], optimum["baseline"]["mixture"], 0.9, **constraints
    )


def _pipeline_stage(
    cfg: RunConfig,
    out: Path,
    state: dict,
    counts: dict[str, int],
    target_params: int,
    target_tokens: int,
    baseline: tuple[str, tuple],
    command: str | None,
    quiet: bool,
) -> tuple[dict, dict]:
    """Fit the laws and optimize, or reuse the results of an earlier invocation with the same inputs."""
    from mixlaw.optimize import optimize
    from mixlaw.pipeline import PipelineConfig, run_pipeline, write_outputs

    p = cfg.pipeline
    inputs = {
        "pipeline": p,
        "optimize": cfg.optimize,
        "target_params": target_params,
        "target_steps": cfg.target_steps,
        "target_tokens": target_tokens,
        "counts": counts,
        "baseline": baseline[1],
    }
    digest = _sha((out / "runs.csv").read_bytes(), json.dumps(inputs, sort_keys=True, default=str).encode())
    files = ["law.json", "optimum.json", "predictions.csv", "checks.json", "pipeline-summary.md"]
    prev = state.get("pipeline") or {}
    if prev.get("inputs") == digest and all((out / f).is_file() for f in files):
        _say("[3/5] pipeline: unchanged inputs, reusing law.json and optimum.json", quiet)
        return json.loads((out / "optimum.json").read_text()), prev
    _say(
        f"[3/5] pipeline: step and size laws, mixing law at {target_params:,} params x {cfg.target_steps} steps, "
        "optimum",
        quiet,
    )

    def rng(key: str, default: tuple[float, float]) -> tuple[float, float]:
        v = p.get(key)
        if v is None:
            return default
        if not (isinstance(v, list) and len(v) == 2 and 0 < v[0] < v[1]):
            raise MixlawInputError(f"{cfg.path}: pipeline.{key}: {v!r} must be [lo, hi] with 0 < lo < hi")
        return float(v[0]), float(v[1])

    from mixlaw.scaling import SIZE_EXPONENT, STEP_EXPONENT

    config = PipelineConfig(
        target_params=float(target_params),
        target_step=float(cfg.target_steps),
        law=p.get("law", "auto"),
        scale=p.get("scale_law", "chain"),
        cv=int(p.get("cv", 5)),
        min_sizes=int(p.get("min_sizes", min(3, len(cfg.sweep.models)))),
        step_share=p.get("step_share", "mixture"),
        size_share=p.get("size_share", "all"),
        delta=float(p.get("huber_delta", 0.02)),
        step_exponent=rng("step_exponent", STEP_EXPONENT),
        size_exponent=rng("size_exponent", SIZE_EXPONENT),
    )
    table = read_runs(out / "runs.csv")
    weights_spec = p.get("valid_weights")
    if weights_spec not in (None, "uniform"):
        weights_spec = (
            str(Path(cfg.path).parent / weights_spec)
            if not Path(weights_spec).is_absolute()
            else weights_spec
        )
    weights = load_weights(weights_spec, table.valid_domains, p.get("group"))
    result = run_pipeline(table, weights, config, log=lambda m: _say(f"  {m}", quiet))
    cmd = command or "mixlaw run"
    result.law.meta["command"] = cmd
    from mixlaw.train.corpus import column_name as col

    opt = cfg.optimize
    bounds = {col(d): (b[0], b[1]) for d, b in (opt.get("bounds") or {}).items()}
    objective = opt.get("objective", "total")
    constraints = {
        "bounds": bounds or None,
        "available": {col(d): float(v) for d, v in counts.items()},
        "target_tokens": float(target_tokens),
        "max_epochs": float(opt.get("max_epochs", 4.0)),
        "fixed": {col(d): float(v) for d, v in (opt.get("fixed") or {}).items()},
        "objective": objective,
    }
    optimum = optimize(
        result.law,
        **constraints,
        baseline={col(d): v for d, v in baseline[1]},
        baseline_name=baseline[0],
        max_distance=opt.get("max_distance"),
        seed=0,
    )
    optimum["uncertainty"] = _optimum_intervals(
        result, optimum, constraints, int(opt.get("bootstrap", 30)), lambda m: _say(f"  {m}", quiet)
    )
    write_outputs(result, optimum, out, cmd, summary_name="pipeline-summary.md")
    eq = optimum.get("equivalent_extra_steps")
    _say(
        f"  optimum: {', '.join(f'{k[2:]} {v:.3f}' for k, v in optimum['mixture'].items())}; predicted "
        f"{optimum['predicted']['objective']:.4f} vs baseline {optimum['baseline']['predicted']['objective']:.4f}"
        + (f", equivalent to {eq:.2f}x the steps" if eq is not None else ""),
        quiet,
    )
    return optimum, {"inputs": digest, "law": result.law.law.name, "seconds": result.timings.get("total")}


def _validation_specs(
    cfg: RunConfig, template: Any, optimum: dict[str, float], baseline: dict[str, float]
) -> list:
    """RunSpecs of the target model on the optimum (target steps) and the baseline (baseline_steps x target)."""
    domains = cfg.sweep.train_domains
    S = cfg.target_steps
    base_len = _baseline_len(cfg)
    evals = tuple(
        sorted({max(1, round(f * S)) for f in cfg.eval_fractions if f * S <= base_len + 1e-9} | {S})
    )
    settings = replace(template.settings, eval_steps=evals, eval_points=len(evals))
    if cfg.target_lr is not None:
        settings = replace(settings, lr=cfg.target_lr)
    specs = []
    for mix, steps in ((optimum, S), (baseline, base_len)):
        for seed in cfg.seeds:
            specs.append(
                replace(
                    template,
                    mixture=_mixture_tuple(mix, domains),
                    layers=cfg.target_layers,
                    width=cfg.target_width,
                    heads=cfg.target_heads,
                    steps=steps,
                    seed=seed,
                    settings=settings,
                )
            )
    return specs


# --------------------------------------------------------------------------------------------- measurement


def _first_crossing(steps: np.ndarray, curve: np.ndarray, level: float) -> float | None:
    """First step where the (noisy) curve falls to `level`, interpolated linearly in log(step); None if never."""
    for i in range(len(steps)):
        if curve[i] <= level:
            if i == 0:
                return float(steps[0]) if curve[0] == level else None
            a, b = curve[i - 1], curve[i]
            t = (a - level) / (a - b) if a != b else 1.0
            return float(np.exp(np.log(steps[i - 1]) + t * (np.log(steps[i]) - np.log(steps[i - 1]))))
    return None


def equivalent_steps(
    steps: np.ndarray, base_curve: np.ndarray, level: float, target: float
) -> dict[str, Any]:
    """Steps at which the baseline's seed-mean curve reaches `level` (the optimum's measured loss at `target`).

    Measured by interpolation between the baseline's checkpoints when the crossing lies inside them; otherwise
    extrapolated by a step law E + B (S/S_ref)^-beta fitted to the baseline's seed-mean curve (said so)."""
    from mixlaw.scaling import fit_curves

    hit = _first_crossing(steps, base_curve, level)
    out: dict[str, Any] = {
        "target_steps": target,
        "optimum_loss": float(level),
        "baseline_checkpoints": steps.tolist(),
        "baseline_curve": base_curve.tolist(),
    }
    if hit is not None:
        out.update(
            steps=hit,
            ratio=hit / target,
            method="interpolated between the baseline's measured checkpoints "
            f"(seed mean, {steps[0]:g} to {steps[-1]:g} steps)",
        )
        return out
    if level < base_curve.min():
        fit = fit_curves(
            "step",
            steps[:, None].astype(float),
            base_curve[None],
            [{"mixture": "baseline"}],
            np.zeros(1, int),
            "none",
            ["step"],
            delta=None,
        )
        E, B = fit.coef[0]
        beta, ref = float(fit.exps[0, 0]), float(fit.ref[0])
        out["baseline_step_law"] = {"E": float(E), "B": float(B), "beta": beta, "ref": ref}
        if level <= E or B <= 0:
            out.update(
                steps=None,
                ratio=None,
                method="step law fitted to the baseline's seed-mean curve",
                reason=f"the baseline's fitted curve never reaches {level:.5g} (asymptote {E:.5g})",
            )
            return out
        s = ref * ((level - E) / B) ** (-1.0 / beta)
        out.update(
            steps=float(s),
            ratio=float(s / target),
            method=f"extrapolated beyond the baseline's last checkpoint ({steps[-1]:g} steps) by a step law "
            "fitted to its seed-mean curve",
        )
        return out
    out.update(
        steps=None,
        ratio=None,
        method="interpolated",
        reason=f"the optimum's loss is above the baseline's at its first checkpoint ({steps[0]:g} steps)",
    )
    return out


def _stats(values: np.ndarray) -> dict[str, float]:
    return {
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "n": int(len(values)),
        "min": float(values.min()),
        "max": float(values.max()),
    }


def verdict(gain: float, sigma: float, baseline_name: str) -> tuple[str, str]:
    """("win" | "loss" | "within noise", sentence): a side wins only beyond NOISE_SIGMAS pooled seed stds."""
    threshold = NOISE_SIGMAS * sigma
    if gain > threshold:
        kind = "win"
        text = (
            f"The chosen mixture beat the {baseline_name} baseline at the target scale by {gain:.4f} nats "
            f"({gain / sigma if sigma else math.inf:.1f} seed standard deviations; threshold "
            f"{NOISE_SIGMAS:g}, sigma {sigma:.4f})."
        )
    elif gain < -threshold:
        kind = "loss"
        text = (
            f"The {baseline_name} baseline beat the chosen mixture at the target scale by {-gain:.4f} nats "
            f"({-gain / sigma if sigma else math.inf:.1f} seed standard deviations; threshold "
            f"{NOISE_SIGMAS:g}, sigma {sigma:.4f})."
        )
    else:
        kind = "within noise"
        text = (
            f"The difference between the chosen mixture and the {baseline_name} baseline ({gain:+.4f} nats, "
            f"positive = optimum better) is within noise: {NOISE_SIGMAS:g} seed standard deviations are "
            f"{threshold:.4f} nats. No win is claimed."
        )
    if sigma == 0:
        text += " (The seed standard deviation is 0: the seeds gave identical losses.)"
    return kind, text


def measure(cfg: RunConfig, out: Path, optimum: dict, specs: list, baseline_name: str) -> dict[str, Any]:
    """Predicted against measured loss of both arms, the seed noise, the verdict and the measured step gain."""

    table = read_runs(out / "validation" / "runs.csv")
    p = cfg.pipeline
    wspec = p.get("valid_weights")
    if wspec not in (None, "uniform") and not Path(wspec).is_absolute():
        wspec = str(Path(cfg.path).parent / wspec)
    w = load_weights(wspec, table.valid_domains, p.get("group"))
    wide = aggregate(table, w)
    targets = list(w.groups)
    # the optimizer's objective (the weighted total by default) measured on the validation runs
    obj_w = {
        str(k): float(v) for k, v in (optimum.get("objective") or {}).get("weights", w.group_weight).items()
    }
    wide["objective"] = sum(wt * wide[t].to_numpy(dtype=float) for t, wt in obj_w.items())
    S = cfg.target_steps
    arms = {}
    ids = {
        "optimum": [s.run_id for s in specs[: len(cfg.seeds)]],
        "baseline": [s.run_id for s in specs[len(cfg.seeds) :]],
    }
    per_seed = []
    predicted = {"optimum": optimum["predicted"], "baseline": optimum["baseline"]["predicted"]}
    for arm, runs in ids.items():
        sub = wide[wide["run"].isin(runs)]
        at = sub[sub["step"] == S].set_index("run").reindex(runs)
        if at["total"].isna().any():
            raise MixlawInputError(f"{out}/validation: the {arm} runs have no checkpoint at step {S}")
        for run_id, row in at.iterrows():
            per_seed.append(
                {
                    "arm": arm,
                    "run": run_id,
                    "seed": int(row["seed"]),
                    "step": S,
                    "objective": row["objective"],
                    "total": row["total"],
                    **{f"loss_{t}": row[t] for t in targets},
                }
            )
        totals = at["objective"].to_numpy(dtype=float)
        pred = predicted[arm]
        per_target = {}
        for t in targets:
            st = _stats(at[t].to_numpy(dtype=float))
            pt = pred.get(t)
            per_target[t] = {
                "measured": st,
                "predicted": pt,
                "rel_error": (pt / st["mean"] - 1) if pt is not None else None,
            }
        st = _stats(totals)
        curve = sub.groupby("step")["objective"].agg(["mean", "std", "count"]).reset_index()
        arms[arm] = {
            # the written spelling of optimum.json and the runs table (math_prose, not the config's math-prose)
            "mixture": {canonical_name(d): v for d, v in specs[0 if arm == "optimum" else -1].mixture},
            "runs": runs,
            "seeds": list(cfg.seeds),
            "steps": int(sub["step"].max()),
            "measured": st,
            "predicted": pred.get("objective", pred.get("total")),
            "rel_error": pred.get("objective", pred.get("total")) / st["mean"] - 1,
            "per_target": per_target,
            "curve": {
                "step": curve["step"].tolist(),
                "mean": curve["mean"].tolist(),
                "std": curve["std"].tolist(),
            },
        }
    arms["baseline"]["name"] = baseline_name
    o, b = arms["optimum"]["measured"], arms["baseline"]["measured"]
    gain = b["mean"] - o["mean"]
    sigma = math.sqrt((o["std"] ** 2 + b["std"] ** 2) / 2)
    # paired by seed (same seed = same initialization and data order within each domain)
    po = {r["seed"]: r["objective"] for r in per_seed if r["arm"] == "optimum"}
    pb = {r["seed"]: r["objective"] for r in per_seed if r["arm"] == "baseline"}
    diffs = np.array([pb[s] - po[s] for s in cfg.seeds if s in po and s in pb])
    threshold = NOISE_SIGMAS * sigma
    kind, text = verdict(gain, sigma, baseline_name)
    bcurve = arms["baseline"]["curve"]
    eq = equivalent_steps(
        np.array(bcurve["step"], dtype=float), np.array(bcurve["mean"], dtype=float), o["mean"], S
    )
    pred_gain = optimum["baseline"]["predicted"]["objective"] - optimum["predicted"]["objective"]
    return {
        "target": {
            "model": cfg.target_label,
            "steps": S,
            "baseline_steps": _baseline_len(cfg),
            "params": int(table.frame["params"].iloc[0]),
            "tokens": int(S * cfg.sweep.settings.batch_size * cfg.sweep.settings.seq_len),
        },
        "objective": {
            "weights": obj_w,
            "note": "the optimizer's objective: weighted sum of per-target losses (nats/token)",
        },
        "arms": arms,
        "gain": {
            "measured": gain,
            "predicted": pred_gain,
            "sigma_pooled": sigma,
            "threshold": threshold,
            "sigmas": gain / sigma if sigma > 0 else None,
            "paired": {
                "mean": float(diffs.mean()),
                "std": float(diffs.std(ddof=1)) if len(diffs) > 1 else 0.0,
                "n": int(len(diffs)),
            },
        },
        "verdict": {
            "result": kind,
            "text": text,
            "rule": f"win or loss only beyond {NOISE_SIGMAS:g} pooled seed "
            "standard deviations of the objective at the target steps",
        },
        "equivalent_steps": {
            "measured": eq,
            "predicted": optimum.get("equivalent_extra_steps"),
            "predicted_reason": optimum.get("equivalent_extra_steps_reason"),
        },
        "per_seed": per_seed,
    }


def validation_markdown(result: dict, cfg: RunConfig, command: str | None) -> str:
    """The validation section that opens summary.md."""
    t, arms, g = result["target"], result["arms"], result["gain"]
    eq = result["equivalent_steps"]
    lines = ["# mixlaw run: validation at the target scale", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        f"Target: {t['model']} ({t['params']:,} non-embedding parameters), {t['steps']} steps "
        f"({t['tokens']:,} tokens); {len(cfg.seeds)} seeds per mixture.",
        "",
        f"**Verdict: {result['verdict']['result']}.** {result['verdict']['text']}",
        "",
        "| mixture | predicted | measured (mean ± seed std) | rel. error | seeds |",
        "|---|---|---|---|---|",
    ]
    for arm in ("optimum", "baseline"):
        a = arms[arm]
        m = a["measured"]
        name = arm if arm == "optimum" else f"baseline ({a['name']})"
        lines.append(
            f"| {name} | {a['predicted']:.4f} | {m['mean']:.4f} ± {m['std']:.4f} | "
            f"{100 * a['rel_error']:+.2f}% | {m['n']} |"
        )
    lines += [
        "",
        f"Gain (baseline − optimum, objective, nats): measured {g['measured']:+.4f}, predicted "
        f"{g['predicted']:+.4f}; pooled seed std {g['sigma_pooled']:.4f}; paired by seed "
        f"{g['paired']['mean']:+.4f} ± {g['paired']['std']:.4f}.",
        "",
    ]
    m = eq["measured"]
    if m.get("ratio") is not None:
        lines.append(
            f"Equivalent training steps (measured): the baseline needs {m['steps']:.0f} steps "
            f"({m['ratio']:.2f}x the target) to reach the optimum's loss; {m['method']}."
        )
    else:
        lines.append(f"Equivalent training steps (measured): not available ({m.get('reason')}).")
    pe = eq.get("predicted")
    lines.append(
        "Equivalent training steps (predicted by the pipeline): "
        + (f"{pe:.2f}x." if pe is not None else f"not available ({eq.get('predicted_reason')}).")
    )
    if result["verdict"]["result"] == "within noise":
        lines.append("The difference is within noise, so the equivalent-steps figure is not a claimed gain.")
    elif result["verdict"]["result"] == "loss":
        lines.append(
            "The chosen mixture lost to the baseline: a ratio below 1 says how many of the target steps "
            "the baseline needed to match it."
        )
    lines += ["", "| domain | optimum | baseline |", "|---|---|---|"]
    for k, v in arms["optimum"]["mixture"].items():
        lines.append(f"| {k} | {v:.4f} | {arms['baseline']['mixture'][k]:.4f} |")
    lines += [
        "",
        "Per target at the target steps (predicted / measured mean ± std):",
        "",
        "| target | optimum | baseline |",
        "|---|---|---|",
    ]
    for tname in arms["optimum"]["per_target"]:
        cells = []
        for arm in ("optimum", "baseline"):
            pt = arms[arm]["per_target"][tname]
            pred = f"{pt['predicted']:.4f}" if pt["predicted"] is not None else "n/a"
            cells.append(f"{pred} / {pt['measured']['mean']:.4f} ± {pt['measured']['std']:.4f}")
        lines.append(f"| {tname} | {cells[0]} | {cells[1]} |")
    tm = result.get("timings") or {}
    if tm:
        lines += [
            "",
            "Stage times of this invocation (s; a resumed job skips finished work, earlier invocations "
            "are listed in run.json): " + ", ".join(f"{k} {v:.0f}" for k, v in tm.items()),
        ]
    lines += [
        "",
        "Files: runs.csv (proxies), law.json, optimum.json, predictions.csv, step_laws.json, "
        "size_laws.json, checks.json, validation.json, validation.csv, validation/runs.csv, report.html",
        "",
    ]
    return "\n".join(lines)


def _write_report(out: Path, command: str | None) -> None:
    import logging

    from mixlaw.report import load_results_dir, write_report

    logging.getLogger("mixlaw").setLevel(logging.ERROR)
    data = load_results_dir(out)
    write_report(
        data, out / "report.html", formats=("png",), title="mixlaw run report", report_command=command
    )
