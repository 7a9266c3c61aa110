"""The confirmation-rung stage of `mixlaw run` (between the pipeline and the validation; `mixlaw.confirm`).

The candidate (the pipeline's optimum) and the baseline are trained with paired seeds (the first
`confirm.seeds` validation seeds) at the rungs: (i) the largest proxy size x the target steps, (ii) the target
size (or `confirm.size`) x the proxies' steps, into `DIR/rungs/` through the sweep machinery (resumable). When
the candidate fails, the fallback arms (the candidate shrunk toward the baseline, then the best observed proxy
mixture) are trained at the same rungs, one at a time, against the same baseline runs. The law's predicted
gains at the rungs come from the pipeline's scale laws, refitted once and cached in `DIR/rungs/plan.json`.
The record goes to `DIR/confirm.json`; the validation never claims a win the rungs did not confirm
(`with_confirmation`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from mixlaw.confirm import (
    Rung,
    TargetPrediction,
    anchor_text,
    confirmation_block,
    decide,
    fallback_arms,
    gains_of,
    plan_rungs,
    predicted_losses,
    rung_noise,
    rung_rows,
    scale_predictor,
    text_block,
)
from mixlaw.files import dump_json
from mixlaw.fitted import FittedLaw
from mixlaw.job.config import RunConfig
from mixlaw.mixture import strip_prefix
from mixlaw.pipeline import run_pipeline
from mixlaw.runs import load_weights, read_runs
from mixlaw.settings import ModelShape
from mixlaw.train.corpus import column_name
from mixlaw.train.spec import mixture_pairs
from mixlaw.train.sweep import run_sweep

EVAL_FRACTIONS = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # dense near the end: the one-seed checkpoint-noise estimate


def plan(cfg: RunConfig, out: Path, target_params: int, params_of: Callable[[ModelShape], int]) -> list[Rung]:
    """The rungs of a run config: proxy sizes and params from DIR/runs.csv, rung (ii) at `confirm.size`."""
    table = read_runs(out / "runs.csv")
    sizes = table.frame.drop_duplicates("model").set_index("model")["params"].astype(float).to_dict()
    return _rungs(cfg, sizes, float(table.frame["step"].max()), target_params, params_of)


def planned_specs(
    cfg: RunConfig, proxies: list, baseline: tuple, params_of: Callable[[ModelShape], int]
) -> list:
    """The rung runs the job will train before any fallback (candidate and baseline; the candidate's mixture
    does not change their cost), from the proxy specs alone: the whole-job time estimate's plan."""
    if cfg.confirm is None or not proxies:
        return []
    sizes = {r.model_label: float(params_of(ModelShape(r.layers, r.width, r.heads))) for r in proxies}
    steps = max(r.steps for r in proxies)
    rungs = _rungs(cfg, sizes, steps, float(params_of(cfg.target)), params_of)
    return 2 * _specs(cfg, proxies[0], rungs, baseline, list(cfg.seeds[: cfg.confirm.seeds]))


def _rungs(
    cfg: RunConfig,
    sizes: dict[str, float],
    proxy_steps: float,
    target_params: float,
    params_of: Callable[[ModelShape], int],
) -> list[Rung]:
    """`plan_rungs` for a run config: proxy sizes {label: params}, rung (ii) at `confirm.size` (or the target)."""
    size = None
    if cfg.confirm.size != "target":
        shape = ModelShape.parse(cfg.confirm.size, f"{cfg.path}: confirm.size")
        size = (shape.label, float(params_of(shape)))
    return plan_rungs(sizes, proxy_steps, cfg.target_label, target_params, cfg.target_steps, size)


def _arms(optimum: dict[str, Any], columns: list[str], shrink: float) -> dict[str, np.ndarray]:
    vec = lambda mix: np.array([float(mix.get(c, 0.0)) for c in columns])  # noqa: E731
    alt = optimum.get("alternative")
    return fallback_arms(
        vec(optimum["mixture"]),
        vec(optimum["baseline"]["mixture"]),
        vec(alt["mixture"]) if isinstance(alt, dict) else None,
        shrink,
    )


def _predictions(
    cfg: RunConfig,
    out: Path,
    target_params: int,
    rungs: list[Rung],
    arms: dict,
    baseline: np.ndarray,
    key: str,
) -> dict[str, dict[str, list[float]]]:
    """The law's objective losses {baseline, arm: [loss]} at the rungs (`rungs`) and at the target
    (`target`, one value), cached in rungs/plan.json by the pipeline's inputs, the rungs and arms."""
    path = out / "rungs" / "plan.json"
    if path.is_file():
        cached = json.loads(path.read_text())
        if cached.get("key") == key and "losses" in cached:
            return cached["losses"]
    table = read_runs(out / "runs.csv")
    weights = load_weights(cfg.valid_weights, table.valid_domains, cfg.group)
    # the scale laws again (deterministic), with the saved mixing law instead of a second `auto` selection
    saved = FittedLaw.load(out / "law.json")
    result = run_pipeline(table, weights, replace(cfg.pipeline_for(target_params), law=saved.law.name))
    result = replace(result, law=saved)
    objective = json.loads((out / "optimum.json").read_text())["objective"]["weights"]
    predict = scale_predictor(result, objective)
    losses = {
        "rungs": predicted_losses(predict, [(r.params, r.steps) for r in rungs], arms, baseline),
        "target": predicted_losses(
            predict, [(float(target_params), float(cfg.target_steps))], arms, baseline
        ),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    dump_json({"key": key, "rungs": [asdict(r) for r in rungs], "losses": losses}, path)
    return losses


def _specs(cfg: RunConfig, template: Any, rungs: list[Rung], mixture: tuple, seeds: list[int]) -> list:
    specs = []
    for rung in rungs:
        shape = ModelShape.parse(rung.model, "rung") if rung.model != cfg.target_label else cfg.target
        steps = int(rung.steps)
        evals = tuple(sorted({max(1, round(f * steps)) for f in EVAL_FRACTIONS}))
        settings = replace(template.settings, eval_steps=evals, eval_points=len(evals))
        if cfg.target_lr is not None and shape == cfg.target:
            settings = replace(settings, lr=cfg.target_lr)
        for seed in seeds:
            specs.append(
                replace(
                    template,
                    mixture=mixture,
                    layers=shape.layers,
                    width=shape.width,
                    heads=shape.heads,
                    steps=steps,
                    seed=seed,
                    settings=settings,
                )
            )
    return specs


def confirm_stage(
    cfg: RunConfig,
    out: Path,
    optimum: dict[str, Any],
    template: Any,
    target_params: int,
    executor: Any,
    params_of: Callable[[ModelShape], int],
    say: Callable[[str], None] = lambda m: None,
    progress: bool = False,
    pipeline_key: str = "",
    eta: Any = None,
) -> dict[str, Any] | None:
    """Train the rungs (lazily down the fallback chain), decide, write DIR/confirm.json; None if turned off."""
    c = cfg.confirm
    if c is None:
        return None
    rungs = plan(cfg, out, target_params, params_of)
    if not rungs:
        say(
            "rungs: no scale between the proxies and the target (same steps, rung size = target); nothing to confirm"
        )
        return None
    table = read_runs(out / "runs.csv")
    columns = table.domain_columns
    arms = _arms(optimum, columns, c.shrink)
    baseline = np.array([float(optimum["baseline"]["mixture"].get(col, 0.0)) for col in columns])
    key = json.dumps([pipeline_key, [asdict(r) for r in rungs], {k: v.tolist() for k, v in arms.items()}])
    losses = _predictions(cfg, out, target_params, rungs, arms, baseline, key)
    predicted = gains_of(losses["rungs"])
    at_target = {n: v[0] for n, v in losses["target"].items()}
    target = TargetPrediction(
        gain={n: g[0] for n, g in gains_of(losses["target"]).items()},
        loss=at_target,
        validation_seeds=len(cfg.seeds),
    )
    seeds = list(cfg.seeds[: c.seeds])
    domains = list(cfg.sweep.train_domains)
    by_column = {col: d for d in domains for col in columns if strip_prefix(col) == column_name(d)}

    def tuple_of(vec: np.ndarray) -> tuple:
        return mixture_pairs({by_column[col]: float(v) for col, v in zip(columns, vec)}, domains)

    names = list(arms) if c.fallback else ["candidate"]
    mixtures = {n: {col: float(v) for col, v in zip(columns, arms[n])} for n in names}
    specs = _specs(cfg, template, rungs, tuple_of(baseline), seeds)
    record = None
    for k, name in enumerate(names, start=1):
        specs += _specs(cfg, template, rungs, tuple_of(arms[name]), seeds)
        say(
            f"rungs: {name.replace('_', ' ')} and baseline at "
            + ", ".join(f"{r.model} x {r.steps:g}" for r in rungs)
            + f", {len(seeds)} seed(s) -> {out / 'rungs'}"
        )
        run_sweep(specs, out / "rungs", executor=executor, progress=progress, eta=eta)
        rtable = read_runs(out / "rungs" / "runs.csv")
        weights = load_weights(cfg.valid_weights, rtable.valid_domains, cfg.group)
        objective = optimum["objective"]["weights"]
        vectors = {"baseline": baseline, **{n: arms[n] for n in names[:k]}}
        rows = rung_rows(rtable, weights, objective, vectors)
        noise = {r.name: rung_noise(rtable, weights, r) for r in rungs} if len(seeds) == 1 else None
        record = decide(
            rows,
            rungs,
            {n: predicted[n] for n in names[:k]},
            c.fraction,
            noise,
            names[:k],
            mixtures,
            target=target,
            predicted_loss=losses["rungs"],
        )
        if record["verdict"] == "claim":
            break
    record.update(
        seeds=seeds,
        runs=len(specs),
        cost=_cost(cfg, rungs, len(seeds), target_params, len(specs) // max(1, len(rungs) * len(seeds))),
        predicted_source="the pipeline's scale laws at each rung and at the target (mixing law refitted there)",
        law_target=at_target,
    )
    dump_json(record, out / "confirm.json")
    for line in text_block(record).splitlines():
        say(line)
    return record


def _cost(
    cfg: RunConfig, rungs: list[Rung], n_seeds: int, target_params: float, n_arms: int
) -> dict[str, Any]:
    """Rung compute (params x steps) in target runs, and as a share of the validation's."""
    per_arm = sum(r.params * r.steps for r in rungs) / (target_params * cfg.target_steps)
    rung_runs = per_arm * n_seeds * n_arms
    validation = len(cfg.seeds) * (1 + cfg.baseline_len / cfg.target_steps)
    return {
        "target_runs": float(rung_runs),
        "validation_share": float(rung_runs / validation),
        "note": "non-embedding params x steps of every rung run, in units of one target run",
    }


def with_confirmation(verdict: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any]:
    """The validation verdict after the rungs: `claimed` only when the rungs confirmed the validated mixture
    (the candidate itself); a measured win the rungs did not confirm is reported, not claimed. A confirmation
    with a rung-anchored target gain (`target`) applied the recommendation rule again with the rungs' data, so
    it supersedes the pipeline's decline made before them."""
    if record is None:
        return verdict
    out = {**verdict, "confirmation": record["verdict"], "confirmation_reason": record["reason"]}
    confirmed = record["verdict"] == "claim" and record["fallback"] is None
    anchored = confirmed and record.get("target") is not None
    if anchored and verdict.get("recommendation") == "decline":
        out["text"] = out["text"] + (
            " The confirmation rungs then measured the gain at intermediate scales and their anchored target "
            f"gain passed the same rule, so the claim rests on them: {record['reason']}"
        )
    # a win, confirmed by the rungs, and recommended: by the pipeline before them or by their anchored gain
    out["claimed"] = verdict["result"] == "win" and confirmed and (anchored or out.get("claimed", True))
    if verdict["result"] == "win" and not confirmed:
        other = record["fallback"] or "baseline"
        out["text"] = (
            out["text"] + " The confirmation rungs did not confirm this mixture, so the win is measured, not "
            f"claimed (rungs: {record['reason']} Recommended instead: the {other.replace('_', ' ')})."
        )
    return out


def anchored_check(gain: dict[str, Any], arms: dict[str, Any], record: dict[str, Any] | None) -> dict | None:
    """validation.json's `gain.anchored`: the candidate's rung-anchored target prediction (confirm.json's
    `target`, made before the validation) against the measured gain and the optimum's measured loss."""
    anchored = (record or {}).get("target")
    if anchored is None:
        return None
    measured, interval = gain["measured"], anchored["measured"]
    loss = (anchored.get("loss") or {}).get("arm")
    opt = arms["optimum"]["measured"]["mean"]
    return {
        **{k: anchored["gain"][k] for k in ("value", "lo", "hi")},
        "p_beats_baseline": anchored["p_beats_baseline"],
        "measured_lo": interval["lo"],
        "measured_hi": interval["hi"],
        "inside": bool(interval["lo"] <= measured <= interval["hi"]),
        "optimum_predicted": loss,
        "optimum_rel_error": None if loss is None else loss / opt - 1,
        "note": "predicted from the law and the confirmation rungs before the validation; measured_lo/hi: the "
        f"90% interval of the gain {interval['seeds']} paired seed(s) measure",
    }


def claimed_fallback(record: dict[str, Any] | None) -> tuple[str, dict[str, float]] | None:
    """(arm, mixture) of a fallback the rungs claimed (shrunk or best observed), else None."""
    if not record or record["verdict"] != "claim" or record["fallback"] is None:
        return None
    return record["arm"], record["mixture"]


def recommended_block(name: str, measured: Any, record: dict[str, Any]) -> dict[str, Any]:
    """validation.json's `recommended`: the claimed fallback measured at the target against the same baseline
    runs (`measured`: its `Validation`), with its anchored prediction."""
    arm = measured.arms["optimum"]
    entry = next(w for w in record["chain"] if w["arm"] == name)
    gain = {
        **measured.gain,
        "anchored": anchored_check(measured.gain, measured.arms, {"target": entry["target"]}),
    }
    return {
        "arm": name,
        "mixture": arm["mixture"],
        "runs": arm["runs"],
        "measured": arm["measured"],
        "gain": gain,
        "verdict": measured.verdict,
    }


def with_recommended(verdict: dict[str, Any], recommended: dict[str, Any]) -> dict[str, Any]:
    """The verdict once the claimed fallback is measured: `claimed` is its measured win (the candidate was not
    confirmed, so its own win, if any, is not claimed)."""
    result = recommended["verdict"]["result"]
    name = recommended["arm"].replace("_", " ")
    text = f" The recommended {name} mixture, measured at the target: {recommended['verdict']['text']}"
    return {
        **verdict,
        "claimed": result == "win",
        "claimed_arm": recommended["arm"],
        "text": verdict["text"] + text,
    }


def recommendation_block(optimum: dict[str, Any], record: dict[str, Any] | None) -> dict[str, Any] | None:
    """validation.json's `recommendation`: optimum.json's, plus `confirmation` from the rungs."""
    rec = dict(optimum.get("recommendation") or {})
    if record is None and not rec:
        return None
    if record is not None:
        rec["confirmation"] = confirmation_block(record)
    return rec


def confirmation_markdown(record: dict[str, Any] | None) -> str:
    """The summary.md section on the rungs ('' when turned off)."""
    if record is None:
        return ""
    head = "claim" if record["verdict"] == "claim" else "no claim"
    lines = [
        "## Confirmation rungs",
        "",
        f"**{head}** ({record['arm'].replace('_', ' ')}): {record['reason']}",
        "",
        f"Rule: {record['rule']}. Seeds {record.get('seeds')}, cost "
        f"{record['cost']['validation_share']:.0%} of the validation's compute.",
        "",
        "| arm | rung | model x steps | predicted gain | measured gain | sd | seeds | passed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for w in record["chain"]:
        for r in w["rungs"]:
            m = "-" if r["measured_gain"] is None else f"{r['measured_gain']:+.4f}"
            sd = "-" if r["sd"] is None else f"{r['sd']:.4f}"
            lines.append(
                f"| {w['arm']} | {r['rung']} | {r['model']} x {r['steps']:g} | {r['predicted_gain']:+.4f} | {m} "
                f"| {sd} | {len(r['seeds'])} | {'yes' if r['passed'] else 'no'} |"
            )
    for w in record["chain"]:
        t = w.get("target")
        if t is not None:
            lines += [
                "",
                f"{w['arm'].replace('_', ' ').capitalize()}: target gain anchored on the rungs "
                f"{anchor_text(t)} (the law alone: {t['predicted_gain']:+.4f}); "
                + ("passes" if t["verdict"] == "recommend" else "fails")
                + " the recommendation rule.",
            ]
    if record.get("warnings"):
        lines += ["", *(f"**Warning:** {w}." for w in record["warnings"])]
    return "\n".join(lines) + "\n"
