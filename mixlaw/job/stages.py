"""The stages of `mixlaw run`: corpus -> proxy sweep -> pipeline and optimum -> validation -> summary.

Each stage is resumable (rerunning the same command skips finished runs and resumes interrupted ones):

1. corpus: build (or reuse from the cache) the corpus; its training token counts are the availability numbers.
2. proxies: the designed mixtures (plus the baseline mixture) x the proxy sizes x seeds, trained as one sweep
   into `DIR/proxies/` (its runs table is copied to `DIR/runs.csv`).
3. pipeline: step laws, size laws, the mixing law at the target scale, the optimum under availability
   (`mixlaw.solve`); cached in `DIR/run.json` by the hash of its inputs.
4. validation: the target-size model on the optimum and on the baseline mixture (natural token proportions by
   default), >= 3 seeds each, into `DIR/validation/`. The baseline runs continue past the target steps
   (`baseline_steps`, default 1.5x) so that the steps it needs to match the optimum are measured, not guessed.
5. summary: `validation.json`, `validation.csv`, `summary.md` (the validation verdict first, then the pipeline
   summary) and `report.html`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mixlaw.errors import MixlawInputError
from mixlaw.files import atomic_write, dump_json, locked
from mixlaw.job.config import RunConfig
from mixlaw.job.measure import Validation, measure
from mixlaw.job.rungs import (
    anchored_check,
    claimed_fallback,
    confirm_stage,
    confirmation_markdown,
    planned_specs,
    recommendation_block,
    recommended_block,
    with_confirmation,
    with_recommended,
)
from mixlaw.laws import get_law
from mixlaw.mixture import Mixture
from mixlaw.reporting import load_results_dir, write_report
from mixlaw.reporting.markdown import validation_markdown
from mixlaw.runs import PROPORTION_PREFIX, TRAINER_FLOAT_FORMAT, load_weights, read_runs, write_runs
from mixlaw.settings import ModelShape
from mixlaw.solve import solve
from mixlaw.train.corpus import column_name
from mixlaw.train.eta import JobEta, Stage, loaded_seconds, plan_runs
from mixlaw.train.spec import mixture_pairs as _mixture_tuple  # RunSpec hashes depend on it
from mixlaw.train.sweep import (
    LocalExecutor,
    build_runs,
    planned_steps,
    prepare_sweep,
    repetition_report,
    run_sweep,
)
from mixlaw.version import __version__


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


def run_job(
    cfg: RunConfig,
    out_dir: str | Path,
    executor: Any = None,
    quiet: bool = False,
    command: str | None = None,
    report: bool = True,
    validation_executor: Any = None,
) -> Validation:
    """Run (or resume) every stage into `out_dir`; returns the validation result (also in validation.json).

    `executor` trains the proxies and, unless `validation_executor` is given (e.g. torchrun for a large
    target), the validation runs; default: a local process pool with `cfg.workers` (or all cores)."""
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
        vocab = corpus.tokenizer.vocab_size

        def params_of(shape: ModelShape) -> int:
            return non_embedding_params(shape.layers, shape.width, shape.heads, vocab, settings.seq_len)

        target_params = params_of(cfg.target)
        baseline = _baseline_mixture(cfg, counts)
        # the weights against the validation domains the runs will have, before any training
        load_weights(cfg.valid_weights, list(cfg.sweep.valid_domains) or corpus.domains, cfg.group)

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
        eta = _job_eta(
            cfg, proxies, baseline, vocab, params_of, state, started, executor, validation_executor
        )
        eta.start("proxies")
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
            table = run_sweep(
                _longest_first(proxies), out / "proxies", executor=executor, progress=not quiet, eta=eta
            )
            mixture_ids = _mixture_ids(proxies, dict(baseline[1]) if cfg.include_baseline else None)
            write_runs(pipeline_table(table, proxies, mixture_ids), out / "runs.csv", TRAINER_FLOAT_FORMAT)
            atomic_write(out / "mixtures.csv", _mixtures_csv(proxies, mixture_ids))
            timings["proxies"] = time.perf_counter() - t0

            # 3. pipeline + optimum
            t0 = time.perf_counter()
            eta.start("pipeline")
            _say(eta.line(), quiet)
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

            # 3b. confirmation rungs (mixlaw.job.rungs): the candidate and the baseline at intermediate scales
            t0 = time.perf_counter()
            eta.start("rungs")
            confirmation = confirm_stage(
                cfg,
                out,
                optimum,
                proxies[0],
                target_params,
                executor,
                params_of,
                say=lambda m: _say(m, quiet),
                progress=not quiet,
                pipeline_key=pipe_info.get("inputs", ""),
                eta=eta,
            )
            timings["rungs"] = time.perf_counter() - t0

            # 4. validation
            t0 = time.perf_counter()
            eta.start("validation")
            opt_mix = Mixture.parse(optimum["mixture"], cfg.sweep.train_domains, "optimum").as_dict()
            specs = _validation_specs(cfg, proxies[0], opt_mix, dict(baseline[1]))
            n_seeds = len(cfg.seeds)
            # a fallback the rungs claimed is trained at the target too: the claim is then measured
            fallback = claimed_fallback(confirmation)
            fallback_specs = []
            if fallback is not None:
                mix = Mixture.parse(fallback[1], cfg.sweep.train_domains, "fallback").as_dict()
                fallback_specs = _validation_specs(cfg, proxies[0], mix, dict(baseline[1]))[:n_seeds]
            _say(
                f"[4/5] validation: {cfg.target_label} ({target_params:,} params) on the optimum "
                f"({cfg.target_steps} steps) and the {baseline[0]} baseline ({cfg.baseline_len} steps), "
                f"{n_seeds} seeds each -> {out / 'validation'}",
                quiet,
            )
            vtable = run_sweep(
                _longest_first(specs + fallback_specs),
                out / "validation",
                executor=validation_executor or executor,
                progress=not quiet,
                eta=eta,
            )
            timings["validation"] = time.perf_counter() - t0
        finally:
            if own:
                executor.shutdown(wait=True, cancel_futures=True)

        # 5. verdict, summary, report
        t0 = time.perf_counter()
        eta.start("report")
        _say(f"[5/5] summary and report ({eta.line()})", quiet)
        result = measure(cfg, out, optimum, specs, baseline[0])
        result.verdict = with_confirmation(with_recommendation(result.verdict, optimum), confirmation)
        result.gain["anchored"] = anchored_check(result.gain, result.arms, confirmation)
        if fallback_specs:
            name = fallback[0]
            law_loss = confirmation["law_target"][name]  # the law alone at the target, as for the optimum
            arm_optimum = {**optimum, "mixture": fallback[1], "predicted": {"objective": law_loss}}
            measured = measure(cfg, out, arm_optimum, fallback_specs + specs[n_seeds:], baseline[0])
            result.recommended = recommended_block(name, measured, confirmation)
            result.verdict = with_recommended(result.verdict, result.recommended)
        result.recommendation = recommendation_block(optimum, confirmation)
        result.proxies = {
            "runs": len(proxies),
            "mixtures": n_mix,
            "sizes": sizes,
            "steps": max(r.steps for r in proxies),
            "rows": int(len(table)),
        }
        del vtable
        dump_json(result.to_dict(), out / "validation.json")
        pd.DataFrame(result.per_seed).to_csv(out / "validation.csv", index=False, float_format="%.6g")
        pipeline_md = (out / "pipeline-summary.md").read_text()
        timings["summary"] = time.perf_counter() - t0
        result.timings = {**timings, "total": time.perf_counter() - started}
        (out / "summary.md").write_text(
            validation_markdown(result, len(cfg.seeds), command)
            + "\n"
            + confirmation_markdown(confirmation)
            + "\n"
            + pipeline_md
        )
        if report:
            t1 = time.perf_counter()
            try:
                _write_report(out, command)
            except Exception as exc:  # noqa: BLE001 - the results stand without the page
                _say(f"report not written ({type(exc).__name__}: {exc}); run `mixlaw report {out}`", quiet)
            timings["report"] = time.perf_counter() - t1
        timings["total"] = time.perf_counter() - started
        result.timings = timings
        dump_json(result.to_dict(), out / "validation.json")
        state["timings"] = timings
        state["verdict"] = result.verdict
        state.setdefault("invocations", []).append(
            {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command, "timings": timings}
        )
        atomic_write(state_path, json.dumps(state, indent=1))
        return result


# CPU-seconds of the stages without training, measured on `mixlaw run --quick` (dml: pipeline 11.6 s, report
# 8.3 s at load ~1 on 2 cores); `auto` cross-validates every candidate law (default run: about 4x).
PIPELINE_CPU_SECONDS = {"named": 12.0, "auto": 50.0}
REPORT_CPU_SECONDS = 10.0


def _job_eta(
    cfg: RunConfig,
    proxies: list,
    baseline: tuple,
    vocab: int,
    params_of: Callable[[ModelShape], int],
    state: dict,
    started: float,
    *executors: Any,
) -> JobEta:
    """The job's stages for its time-left estimate (`mixlaw.train.eta`): the proxy and validation runs as planned
    (the validation mixture does not change their cost), and priors for the fit and the report (the last
    invocation's measured seconds when there is one)."""
    last = (state.get("invocations") or [{}])[-1].get("timings", {})
    law = "auto" if cfg.pipeline_config.law in (None, "auto") else "named"
    pipeline = last.get("pipeline", loaded_seconds(PIPELINE_CPU_SECONDS[law]))
    report = last.get("summary", 0.0) + last.get("report", loaded_seconds(REPORT_CPU_SECONDS))
    base = dict(baseline[1])
    validation = _validation_specs(cfg, proxies[0], base, base)
    slots = [int(getattr(e, "workers", 1) or 1) for e in executors if e is not None]

    return JobEta(
        [
            Stage("proxies", plan_runs(proxies, vocab, planned_steps)),
            Stage("pipeline", seconds=pipeline),
            Stage(
                "rungs", plan_runs(planned_specs(cfg, proxies, baseline[1], params_of), vocab, planned_steps)
            ),
            Stage("validation", plan_runs(validation, vocab, planned_steps), workers=slots[-1]),
            Stage("report", seconds=report),
        ],
        workers=slots[0],
        clock=time.perf_counter,
        started=started,
    )


def with_recommendation(verdict: dict[str, Any], optimum: dict[str, Any]) -> dict[str, Any]:
    """The validation verdict with the pipeline's recommendation: its verdict and reason are reported, and a
    measured win of a declined optimum is said to be no confident recommendation (`claimed` False)."""
    rec = optimum.get("recommendation")
    if not rec:
        return verdict
    out = {**verdict, "recommendation": rec["verdict"], "recommendation_reason": rec["reason"]}
    out["claimed"] = verdict["result"] == "win" and rec["verdict"] == "recommend"
    if rec["verdict"] == "decline":
        out["text"] = (
            verdict["text"]
            + " The pipeline declined to recommend this mixture before validation, so this is no confident "
            f"recommendation (measured, not claimed): {rec['reason']}"
        )
    return out


def _check_law(cfg: RunConfig, n_mixtures: int) -> None:
    """Refuse, before any training, a named mixing law with more parameters than there are mixtures."""
    name = cfg.pipeline_config.law
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
    spec = cfg.optimize.baseline
    if spec == "natural":
        return "natural (token-proportional)", _mixture_tuple({d: counts[d] for d in domains}, domains)
    if spec == "uniform":
        return "uniform", _mixture_tuple({d: 1.0 for d in domains}, domains)
    return "user", _mixture_tuple(spec, domains)


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
    """Fit the laws and optimize (`mixlaw.solve`), or reuse the results of an earlier invocation with the same
    inputs."""
    inputs = {
        "pipeline": cfg.pipeline,
        "optimize": cfg.optimize_block,
        "target_params": target_params,
        "target_steps": cfg.target_steps,
        "target_tokens": target_tokens,
        "counts": counts,
        "baseline": baseline[1],
        "mixlaw_version": __version__,  # a new version may fit or decide differently
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
    table = read_runs(out / "runs.csv")
    weights = load_weights(cfg.valid_weights, table.valid_domains, cfg.group)
    opt = cfg.optimize
    problem = {
        "bounds": {column_name(d): (b[0], b[1]) for d, b in (opt.bounds or {}).items()} or None,
        "available": {column_name(d): float(v) for d, v in counts.items()},
        "target_tokens": float(target_tokens),
        "max_epochs": opt.max_epochs,
        "fixed": {column_name(d): float(v) for d, v in (opt.fixed or {}).items()},
        "objective": opt.objective,
        "max_distance": opt.max_distance,
    }

    log = lambda m: _say(f"  {m}", quiet)  # noqa: E731
    solution = solve(
        table,
        weights,
        cfg.pipeline_for(target_params),
        out,
        problem,
        baseline={column_name(d): v for d, v in baseline[1]},
        baseline_name=baseline[0],
        bootstrap=opt.bootstrap,
        interval=opt.interval,
        strict_bootstrap=False,
        command=command or "mixlaw run",
        summary_name="pipeline-summary.md",
        log=log,
        trust_region=opt.trust_region,
        min_confidence=opt.min_confidence,
    )
    result, optimum = solution.pipeline, solution.optimum
    eq = optimum.get("equivalent_extra_steps")
    _say(
        f"  optimum: {', '.join(f'{k[2:]} {v:.3f}' for k, v in optimum['mixture'].items())}; predicted "
        f"{optimum['predicted']['objective']:.4f} vs baseline {optimum['baseline']['predicted']['objective']:.4f}"
        + (f", equivalent to {eq:.2f}x the steps" if eq is not None else ""),
        quiet,
    )
    rec = optimum.get("recommendation")
    if rec:
        _say(f"  recommendation: {rec['verdict']}: {rec['reason']}", quiet)
    return optimum, {"inputs": digest, "law": result.law.law.name, "seconds": result.timings.get("total")}


def _validation_specs(
    cfg: RunConfig, template: Any, optimum: dict[str, float], baseline: dict[str, float]
) -> list:
    """RunSpecs of the target model on the optimum (target steps) and the baseline (baseline_steps x target)."""
    domains = cfg.sweep.train_domains
    S = cfg.target_steps
    base_len = cfg.baseline_len
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


def _write_report(out: Path, command: str | None) -> None:
    logging.getLogger("mixlaw").setLevel(logging.ERROR)
    data = load_results_dir(out)
    write_report(
        data, out / "report.html", formats=("png",), title="mixlaw run report", report_command=command
    )
