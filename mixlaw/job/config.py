"""The `mixlaw run` config (docs/run.md): YAML -> typed `RunConfig`, every block and value checked up front.

Everything that can be checked without the corpus is checked here, before any training: unknown keys, value
types and ranges (the typed configs of `mixlaw.settings`), bounds, fixed shares, the baseline, the pipeline's
settings and the files the config names (a valid-weights file). Each error is one line naming the file and key.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from mixlaw.confirm import ConfirmConfig
from mixlaw.errors import MixlawInputError
from mixlaw.files import read_yaml
from mixlaw.runs import load_weights, read_table
from mixlaw.settings import (
    ModelShape,
    OptimizeConfig,
    PipelineConfig,
    ValidateConfig,
    check_keys,
    config_keys,
    defaults,
    from_mapping,
    is_number,
)

RUN_KEYS = {"proxies", "target", "pipeline", "optimize", "validate", "quick", "workers", "confirm"}
SHARED_KEYS = {"corpus", "train_domains", "valid_domains", "training"}
PROXY_KEYS = {"models", "steps", "seeds", "seed", "design", "mixtures", "include_baseline"}
TARGET_KEYS = {"model", "steps", "lr"}
# pipeline: the PipelineConfig fields a config may set, plus how the validation losses are weighted
PIPELINE_FIELDS = ("law", "scale", "cv", "min_sizes", "step_share", "size_share", "delta")
PIPELINE_FIELDS += ("step_exponent", "size_exponent", "step_window", "seed")
WEIGHT_KEYS = {"valid_weights", "group"}


def default_config_path(quick: bool = False) -> Path:
    """The embedded config: `run-quick.yaml` with --quick, else `run-default.yaml`."""
    name = "run-quick.yaml" if quick else "run-default.yaml"
    return Path(str(resources.files("mixlaw") / "configs" / name))


@dataclass
class RunConfig:
    """A parsed `mixlaw run` config (see docs/run.md); `raw` is the resolved YAML written to DIR/config.yaml.

    `pipeline_config` holds the pipeline's settings with a provisional `target_params` (the target's
    non-embedding parameter count is known once the corpus' vocabulary is): use `pipeline_for(params)`."""

    raw: dict
    path: str
    sweep: Any  # mixlaw.train.sweep.SweepConfig of the proxies
    include_baseline: bool
    target: ModelShape
    target_steps: int
    target_lr: float | None
    pipeline_config: PipelineConfig
    optimize: OptimizeConfig
    seeds: list[int]  # validation seeds
    baseline_steps: float
    eval_fractions: tuple[float, ...]
    valid_weights: str | None = None  # resolved path, "uniform" or None
    group: str | None = None
    workers: int | None = None
    confirm: ConfirmConfig | None = None  # the confirmation rungs; None = `confirm: false`

    @property
    def target_label(self) -> str:
        return self.target.label

    @property
    def target_layers(self) -> int:
        return self.target.layers

    @property
    def target_width(self) -> int:
        return self.target.width

    @property
    def target_heads(self) -> int:
        return self.target.heads

    @property
    def pipeline(self) -> dict:
        """The config's `pipeline:` block as written (the pipeline stage's cache key)."""
        return self.raw.get("pipeline") or {}

    @property
    def optimize_block(self) -> dict:
        """The config's `optimize:` block as written (the pipeline stage's cache key)."""
        return self.raw.get("optimize") or {}

    @property
    def baseline_len(self) -> int:
        """Steps of the baseline's validation runs: `baseline_steps` x the target steps, rounded up."""
        return int(math.ceil(self.baseline_steps * self.target_steps))

    def pipeline_for(self, target_params: float) -> PipelineConfig:
        return replace(self.pipeline_config, target_params=float(target_params))


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


def _pipeline_settings(
    block: dict, where: str, target_steps: int, n_sizes: int, base_dir: Path
) -> tuple[PipelineConfig, str | None, str | None]:
    """(PipelineConfig with a provisional target size, resolved valid-weights path, group) of `pipeline:`."""
    names = {k: k for k in PIPELINE_FIELDS}
    names.update(scale="scale_law", delta="huber_delta")
    allowed = {names[k] for k in PIPELINE_FIELDS} | WEIGHT_KEYS
    block = check_keys(block, allowed, where)
    settings = {k: v for k, v in block.items() if k not in WEIGHT_KEYS}
    settings.setdefault("min_sizes", min(defaults(PipelineConfig)["min_sizes"], n_sizes))
    if settings.get("law") == "auto":
        settings["law"] = None
    assert set(settings) <= config_keys(PipelineConfig)
    config = from_mapping(
        PipelineConfig,
        settings,
        where,
        skip=("target_params", "target_step", "target_tokens", "fit_steps", "fit_sizes", "step_grid"),
        target_params=1.0,
        target_step=float(target_steps),
    )
    weights = block.get("valid_weights")
    group = block.get("group")
    if weights is not None and not isinstance(weights, str):
        raise MixlawInputError(f"{where}.valid_weights: {weights!r} must be a file name or uniform")
    if group is not None and not isinstance(group, str):
        raise MixlawInputError(f"{where}.group: {group!r} must be a column name")
    if weights not in (None, "uniform"):
        weights = str(Path(weights) if Path(weights).is_absolute() else base_dir / weights)
        if not Path(weights).is_file():
            raise MixlawInputError(f"{where}.valid_weights: {weights}: file not found")
        # the file's columns, weights and grouping column now; its domains against the runs' later
        listed = read_table(weights, "valid-weights")
        domains = listed["valid_domain"].astype(str).tolist() if "valid_domain" in listed.columns else []
        load_weights(weights, domains, group)
    elif group is not None:
        raise MixlawInputError(f"{where}.group: needs a valid_weights file with that grouping column")
    return config, weights, group


def _seeds(value: object, where: str) -> list[int]:
    seeds = list(range(value)) if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(seeds, list)
        or len(set(seeds)) < 3
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    ):
        raise MixlawInputError(
            f"{where}.seeds: {seeds!r} must list at least 3 distinct integer seeds (or be a count >= 3)"
        )
    return list(dict.fromkeys(seeds))


def parse_run_config(raw: dict, where: str = "run config", base_dir: str | Path = ".") -> RunConfig:
    """Validate a run config mapping; every error is one line naming the file, key and value."""
    from mixlaw.train.sweep import parse_sweep_config

    base_dir = Path(base_dir)
    unknown = set(raw) - RUN_KEYS - SHARED_KEYS
    if unknown:
        raise MixlawInputError(
            f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(RUN_KEYS | SHARED_KEYS)})"
        )
    proxies = check_keys(raw.get("proxies"), PROXY_KEYS, f"{where}: proxies")
    if not proxies:
        raise MixlawInputError(f"{where}: proxies: missing (models, steps, design or mixtures)")
    if not isinstance(proxies.get("include_baseline", True), bool):
        raise MixlawInputError(
            f"{where}: proxies.include_baseline: {proxies['include_baseline']!r} must be true or false"
        )
    sweep_raw = {k: raw[k] for k in SHARED_KEYS if k in raw}
    sweep_raw.update({k: v for k, v in proxies.items() if k != "include_baseline"})
    sweep = parse_sweep_config(sweep_raw, f"{where}: proxies", base_dir=base_dir)
    if len(sweep.models) < 2:
        raise MixlawInputError(f"{where}: proxies.models: give at least 2 sizes (3 or more for the size law)")
    target = check_keys(raw.get("target"), TARGET_KEYS, f"{where}: target")
    if "model" not in target or "steps" not in target:
        raise MixlawInputError(f"{where}: target: needs model (e.g. L4-D128) and steps")
    shape = ModelShape.parse(target["model"], f"{where}: target.model")
    steps, lr = target["steps"], target.get("lr")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps <= 0:
        raise MixlawInputError(f"{where}: target.steps: {steps!r} must be an integer > 0")
    if lr is not None and (not is_number(lr) or lr <= 0):
        raise MixlawInputError(f"{where}: target.lr: {lr!r} must be a number > 0")
    pipe, weights, group = _pipeline_settings(
        raw.get("pipeline"), f"{where}: pipeline", steps, len(sweep.models), base_dir
    )
    opt = from_mapping(OptimizeConfig, raw.get("optimize"), f"{where}: optimize")
    opt.check_domains(list(sweep.train_domains), f"{where}: optimize")
    val_where = f"{where}: validate"
    val_block = check_keys(raw.get("validate"), config_keys(ValidateConfig), val_where)
    seeds = _seeds(val_block.get("seeds", defaults(ValidateConfig)["seeds"]), val_where)
    val = from_mapping(ValidateConfig, {k: v for k, v in val_block.items() if k != "seeds"}, val_where)
    if not all(f > 0 for f in val.eval_fractions):
        raise MixlawInputError(
            f"{val_where}.eval_fractions: {list(val.eval_fractions)!r} must be positive multiples of target.steps"
        )
    confirm = _confirm_settings(raw.get("confirm", True), f"{where}: confirm", seeds, sweep, shape)
    workers = raw.get("workers")
    if workers is not None and (not isinstance(workers, int) or isinstance(workers, bool) or workers < 1):
        raise MixlawInputError(f"{where}: workers: {workers!r} must be a positive integer")
    return RunConfig(
        raw=raw,
        path=where,
        sweep=sweep,
        include_baseline=bool(proxies.get("include_baseline", True)),
        target=shape,
        target_steps=int(steps),
        target_lr=float(lr) if lr is not None else None,
        pipeline_config=pipe,
        optimize=opt,
        valid_weights=weights,
        group=group,
        seeds=seeds,
        baseline_steps=val.baseline_steps,
        eval_fractions=tuple(sorted({float(f) for f in val.eval_fractions} | {1.0})),
        workers=workers,
        confirm=confirm,
    )


def _confirm_settings(
    block: object, where: str, seeds: list[int], sweep: Any, target: ModelShape
) -> ConfirmConfig | None:
    """The `confirm:` block (true / omitted: the defaults; false: no rungs), checked before any training."""
    if block is False:
        return None
    confirm = from_mapping(ConfirmConfig, {} if block in (True, None) else block, where)
    if confirm.seeds > len(seeds):
        raise MixlawInputError(
            f"{where}.seeds: {confirm.seeds} is more than the {len(seeds)} validation seeds (validate.seeds)"
        )
    if confirm.size != "target":
        shape = ModelShape.parse(confirm.size, f"{where}.size")
        # non-embedding parameters grow as layers x width^2: the rung must lie between the proxies and the target
        largest = max(m.layers * m.width**2 for m in sweep.models)
        if not largest < shape.layers * shape.width**2 <= target.layers * target.width**2:
            raise MixlawInputError(
                f"{where}.size: {confirm.size} must be larger than the largest proxy and at most the target "
                f"({target.label}), or `target`"
            )
    return confirm
