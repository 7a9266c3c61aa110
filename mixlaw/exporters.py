"""Export an optimized mixture to the config format of a training framework.

    text, notes = export_mixture(load_mixture("opt.json"), "olmo-core", paths={"code": "s3://b/code/*.npy"})

The law's mixture is a share of training *tokens*. Frameworks differ in what a weight means:

| format      | a weight is a share of ...                              | written as                      |
|-------------|---------------------------------------------------------|---------------------------------|
| megatron    | samples of seq_len tokens (= tokens)                    | `--data-path`/`--data-args-path` list |
| nemo        | samples of seq_len tokens (= tokens)                    | `model.data.data_prefix` YAML (NeMo <= 2.5) |
| nemo2       | samples of seq_len tokens (= tokens)                    | Python `PreTrainingDataModule(paths=...)` (NeMo 2.x) |
| nanotron    | samples of seq_len+1 tokens (= tokens)                  | `data_stages[].data.dataset.dataset_folder` + `dataset_weights` YAML |
| olmo-core   | tokens (`target_ratio`, must sum to 1)                  | `source_list` YAML (+ `max_repetition_ratio`) |
| litgpt      | examples of each litdata StreamingDataset               | Python `CombinedStreamingDataset` |
| mosaic      | samples of each stream (`proportion`)                   | llm-foundry `train_loader` YAML |
| hf-datasets | examples (`interleave_datasets(probabilities=...)`)     | Python snippet                  |
| json, yaml  | generic (yaml: RegMix `train:`/`valid:` file prefixes)  | JSON / YAML                     |

Token-level frameworks always get token shares. Example-level samplers (litgpt, mosaic, hf-datasets) get token
shares by default, which is exact when every example is a fixed-length token block (litdata `TokensLoader`,
packed MDS shards); with `unit="documents"` the token shares are converted to document shares with each
domain's mean document length: w_doc[d] is proportional to share[d] / mean_tokens_per_doc[d].

Every domain name and path is checked before anything is written (`check_names`): a name that could end a
comment, a string or a line (control characters, quotes, `#`) is refused, and so is whitespace in a path of a
format that splits on it (megatron, nemo), so a crafted runs table cannot add code or keys to the output.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import yaml

from mixlaw.errors import MixlawInputError
from mixlaw.files import read_json
from mixlaw.mixture import Domains, Mixture, strip_prefix
from mixlaw.runs import read_table
from mixlaw.version import __version__

DECIMALS = 6
TOKEN_FORMATS = ("megatron", "nemo", "nemo2", "nanotron", "olmo-core")
EXAMPLE_FORMATS = ("litgpt", "mosaic", "hf-datasets")
FORMATS = (
    "megatron",
    "nemo",
    "olmo-core",
    "litgpt",
    "mosaic",
    "hf-datasets",
    "nanotron",
    "json",
    "yaml",
    "nemo2",
)
EXTENSIONS = {
    "megatron": "txt",
    "nemo": "yaml",
    "nemo2": "py",
    "olmo-core": "yaml",
    "litgpt": "py",
    "mosaic": "yaml",
    "hf-datasets": "py",
    "nanotron": "yaml",
    "json": "json",
    "yaml": "yaml",
}
# Placeholder data location per format when no --paths entry is given for a domain.
DEFAULT_PATHS = {
    "megatron": "data/{d}_text_document",
    "nemo": "data/{d}_text_document",
    "nemo2": "data/{d}_text_document",
    "nanotron": "datasets/{d}",
    "olmo-core": "data/{d}/*.npy",
    "litgpt": "data/{d}",
    "mosaic": "data/{d}",
    "hf-datasets": "data/{d}",
}
SEMANTICS = {
    "megatron": "Megatron blends samples of seq_len tokens, so these weights are token shares",
    "nemo": "NeMo (Megatron datasets) blends samples of seq_len tokens, so these weights are token shares",
    "nemo2": "NeMo (Megatron datasets) blends samples of seq_len tokens, so these weights are token shares",
    "nanotron": "Nanosets blend samples of sequence_length+1 tokens, so these weights are token shares",
    "olmo-core": "olmo-core target_ratio is a fraction of tokens",
}
# The release whose own loader was run on each format's output (tests/test_export.py, docs/report-and-export.md).
LOADED_BY = {
    "megatron": "megatron-core 0.16.1 (megatron.core.datasets.utils.get_blend_from_list)",
    "nemo": "NeMo <= 2.5 (model.data.data_prefix; NeMo 2.6+ dropped the key: use --format nemo2)",
    "nemo2": "NeMo 2.x (nemo.collections.llm.gpt.data.PreTrainingDataModule(paths=...); "
    "blend parsed by megatron-core 0.16.1 get_blend_from_list)",
    "nanotron": "nanotron main since PR #228, Sept 2024 (NanosetDatasetsArgs dataset_folder + dataset_weights; "
    "the PyPI release 0.4 predates it)",
    "olmo-core": "ai2-olmo-core 3.0.0 (olmo_core.data.source_mixture.SourceMixtureList)",
    "litgpt": "litdata 0.2.76 (litdata.streaming.CombinedStreamingDataset)",
    "mosaic": "mosaicml-streaming 0.13.0 (streaming.Stream proportion, llm-foundry train_loader)",
    "hf-datasets": "datasets 5.2.0 (datasets.interleave_datasets)",
    "yaml": "RegMix model_training/pretrain/tinyllama.py --data_yaml_file (keys are file prefixes)",
}
# Formats whose consumer splits a data path on whitespace (megatron's --data-args-path, NeMo's blend list).
SPLITS_ON_WHITESPACE = ("megatron", "nemo", "nemo2")
UNSAFE_IN_NAMES = "'\"`#\\"
REGMIX_TRAIN, REGMIX_VALID = "train_", "valid_"


@dataclass(frozen=True)
class OptimumMixture(Mixture):
    """A mixture (the one `mixlaw.mixture.Mixture` type) plus what the optimizer predicted for it and for its
    baseline (from optimum.json; empty when unknown)."""

    predicted: dict[str, float] = field(default_factory=dict, compare=False)
    baseline_predicted: dict[str, float] = field(default_factory=dict, compare=False)

    @property
    def weights(self) -> dict[str, float]:
        """{domain: share of training tokens}, in order."""
        return self.as_dict()


def load_mixture(path: str | Path, renormalize: bool = False) -> OptimumMixture:
    """Read OPT.json / optimum.json (`mixture`: {"p_<domain>": share}; the demo's `optimum` also works)."""
    path = Path(path)
    data = read_json(path, "optimum")
    if isinstance(data, dict) and not (  # a file of {x: 1} is not a one-domain mixture
        {"mixture", "optimum"} & set(data) or any(str(k).startswith("p_") for k in data)
    ):
        raise MixlawInputError(
            f"{path}: no 'mixture' object of p_<domain> shares (expected the OPT.json of `mixlaw optimize` "
            "or the optimum.json of `mixlaw pipeline`)"
        )
    return mixture_from_dict(data, path.name, renormalize)


def mixture_from_dict(
    data: dict | list, source: str = "mixture", renormalize: bool = False
) -> OptimumMixture:
    """An OptimumMixture from an optimizer result dict, a plain {domain: share} mapping or Olmix's result list;
    shares are checked by `Mixture` (sum 1 within `mixlaw.mixture.SUM_TOLERANCE`, rescaled only with
    `renormalize`)."""
    mixture = Mixture.from_record(data, None, source, renormalize, hint="pass --renormalize to rescale")
    meta = data if isinstance(data, dict) else {}
    predicted = _numbers(meta.get("predicted"))
    baseline = meta.get("baseline")
    baseline_predicted = _numbers(baseline.get("predicted")) if isinstance(baseline, dict) else {}
    return OptimumMixture(mixture.domains, mixture.shares, source, predicted, baseline_predicted)


def _numbers(value) -> dict[str, float]:
    if not isinstance(value, dict):
        return {}
    return {
        str(k): float(v) for k, v in value.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def parse_paths(items: list[str] | None, domains: list[str]) -> dict[str, str]:
    """`DOMAIN=PATH` strings -> {domain: path}; unknown domains are an error."""
    paths: dict[str, str] = {}
    for item in items or []:
        domain, sep, path = item.partition("=")
        domain = domain.strip()
        if not sep or not domain or not path.strip():
            raise MixlawInputError(f"--paths {item!r}: expected DOMAIN=PATH")
        if any(ch.isspace() or not ch.isprintable() for ch in path.strip()):
            raise MixlawInputError(
                f"--paths {item!r}: the path of {domain!r} holds whitespace or a control character, which the "
                "written config would split on or break over lines"
            )
        found = Domains(domains).find(domain)  # `math-prose` names the mixture's `math_prose`
        if found is None:
            raise MixlawInputError(
                f"--paths {item!r}: unknown domain {strip_prefix(domain)!r}; the mixture has {', '.join(domains)}"
            )
        paths[found] = path.strip()
    return paths


def load_doc_tokens(path: str | Path, domains: list[str]) -> dict[str, float]:
    """Mean tokens per document of each domain: JSON {domain: n} or a table with `domain` and
    `avg_doc_tokens` columns."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        raw = read_json(path, "--avg-doc-tokens")
        if not isinstance(raw, dict):
            raise MixlawInputError(f"{path}: expected a JSON object {{domain: mean tokens per document}}")
        values = dict(raw.items())
    else:
        table = read_table(path, "--avg-doc-tokens")
        for column in ("domain", "avg_doc_tokens"):
            if column not in table.columns:
                raise MixlawInputError(f"{path}: missing column {column} (have: {', '.join(table.columns)})")
        values = dict(zip(table["domain"].astype(str), table["avg_doc_tokens"]))
    known = Domains(domains)
    values = {known.find(str(k)) or strip_prefix(str(k)): v for k, v in values.items()}
    missing = [d for d in domains if d not in values]
    if missing:
        raise MixlawInputError(f"{path}: no mean document length for domain(s) {', '.join(missing)}")
    out = {}
    for d in domains:
        try:
            n = float(values[d])
        except (TypeError, ValueError):
            n = float("nan")
        if not n > 0 or n == float("inf"):
            raise MixlawInputError(
                f"{path}: mean document length of {d!r} is {values[d]!r}, expected a number > 0"
            )
        out[d] = n
    return out


def round_shares(weights: dict[str, float], decimals: int = DECIMALS) -> dict[str, float]:
    """Round to `decimals` so that the rounded shares still sum to exactly 1 (residual on the largest)."""
    quantum = Decimal(1).scaleb(-decimals)
    rounded = {d: Decimal(repr(w)).quantize(quantum, rounding=ROUND_HALF_EVEN) for d, w in weights.items()}
    largest = max(rounded, key=lambda d: rounded[d])
    rounded[largest] += Decimal(1) - sum(rounded.values())
    return {d: float(v) for d, v in rounded.items()}


def to_documents(weights: dict[str, float], doc_tokens: dict[str, float]) -> dict[str, float]:
    """Token shares -> document shares: w_doc[d] proportional to share[d] / mean tokens per document[d]."""
    raw = {d: w / doc_tokens[d] for d, w in weights.items()}
    total = sum(raw.values())
    return {d: v / total for d, v in raw.items()}


def kept_domains(mixture: Mixture) -> list[str]:
    """Domains whose share survives rounding to DECIMALS (the others are left out of every export)."""
    return [d for d, w in mixture.weights.items() if round(w, DECIMALS) != 0]


def recorded_max_epochs(data: object, source: str) -> float | None:
    """The optimizer's epoch limit as a number (OPT.json `constraints.max_epochs`), None when not recorded."""
    constraints = data.get("constraints") if isinstance(data, dict) else None
    value = constraints.get("max_epochs") if isinstance(constraints, dict) else None
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or value == float("inf")
    ):
        raise MixlawInputError(f"{source}: constraints.max_epochs is {value!r}, expected a number > 0")
    return float(value)


def _unsafe(text: str, extra: str = "") -> str | None:
    """Why `text` cannot be written verbatim into a config or code file, or None if it can."""
    for ch in text:
        if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            return f"a control or line-break character {ch!r}"
        if ch in UNSAFE_IN_NAMES:
            return f"the character {ch!r} (quote, backslash or comment start)"
        if ch in extra:
            return f"the character {ch!r}"
    if text != text.strip():
        return "leading or trailing whitespace"
    return None


def check_names(fmt: str, domains: list[str], paths: dict[str, str]) -> None:
    """Refuse a domain name or path that would change the meaning of the file written for `fmt`."""
    for d in domains:
        why = _unsafe(d)
        if why:
            raise MixlawInputError(
                f"domain {d!r}: its name contains {why}; rename the p_ column to export it"
            )
    for d, path in paths.items():
        why = next((f"a control or line-break character {c!r}" for c in path if not c.isprintable()), None)
        if why is None and fmt in SPLITS_ON_WHITESPACE and any(c.isspace() for c in path):
            why = f"whitespace, which {fmt} splits paths on (all weights would be lost)"
        if why:
            raise MixlawInputError(f"path of domain {d!r} ({path!r}) contains {why}; give one with --paths")


def export_mixture(
    mixture: OptimumMixture,
    fmt: str,
    paths: dict[str, str] | None = None,
    unit: str | None = None,
    doc_tokens: dict[str, float] | None = None,
    doc_tokens_source: str = "--avg-doc-tokens",
    max_epochs: float | None = None,
    seq_len: int | None = None,
) -> tuple[str, list[str]]:
    """The config text for `fmt` and notes saying what the weights mean (and what was converted or assumed).

    `max_epochs` is the optimizer's epoch limit (OPT.json `constraints.max_epochs`): olmo-core gets it as
    `max_repetition_ratio`. `seq_len` (tokens per training sequence) sets litgpt's block size."""
    if fmt not in FORMATS:
        raise MixlawInputError(f"unknown export format {fmt!r}; available: {', '.join(FORMATS)}")
    unit = unit or ("documents" if doc_tokens is not None and fmt not in TOKEN_FORMATS else "tokens")
    if unit not in ("tokens", "documents"):
        raise MixlawInputError(f"--unit {unit}: expected tokens or documents")
    notes: list[str] = []
    if fmt in TOKEN_FORMATS and unit == "documents":
        raise MixlawInputError(f"--unit documents does not apply to {fmt}: {SEMANTICS[fmt]}")
    kept_names = kept_domains(mixture)
    dropped = [d for d in mixture.weights if d not in kept_names]
    kept = {d: mixture.weights[d] for d in kept_names}
    check_names(fmt, list(mixture.weights), {})
    if dropped:
        notes.append(f"left out domain(s) with zero share: {', '.join(dropped)}")
    if unit == "documents":
        if doc_tokens is None:
            raise MixlawInputError(
                "--unit documents needs --avg-doc-tokens FILE (mean tokens per document per domain)"
            )
        weights = round_shares(to_documents(kept, doc_tokens))
        meaning = (
            f"weights are shares of DOCUMENTS, converted from the law's token shares with the mean "
            f"document lengths in {doc_tokens_source}"
        )
    else:
        weights = round_shares(kept)
        if fmt in SEMANTICS:
            meaning = f"weights are shares of TOKENS ({SEMANTICS[fmt]})"
        elif fmt in EXAMPLE_FORMATS:
            meaning = (
                "weights are shares of TOKENS: exact when every example is a fixed-length token block "
                "(pre-tokenized, packed data); for whole-document examples use --unit documents "
                "--avg-doc-tokens FILE"
            )
        else:
            meaning = "weights are shares of TOKENS (the unit of the law's mixture)"
    notes.insert(0, meaning)
    given = dict(paths or {})
    if fmt in DEFAULT_PATHS:
        placeholders = [d for d in weights if d not in given]
        if placeholders:
            notes.append(
                f"no --paths for {', '.join(placeholders)}: wrote placeholder path(s) "
                f"{DEFAULT_PATHS[fmt].format(d='<domain>')}; edit them"
            )
        resolved = {d: given.get(d, DEFAULT_PATHS[fmt].format(d=d)) for d in weights}
    else:
        resolved = {d: given[d] for d in weights if d in given}
    check_names(fmt, [], {**given, **resolved})
    if max_epochs is not None and not (isinstance(max_epochs, (int, float)) and max_epochs > 0):
        raise MixlawInputError(f"max_epochs {max_epochs!r}: expected a number > 0")
    if seq_len is not None and not (isinstance(seq_len, int) and seq_len > 0):
        raise MixlawInputError(f"--seq-len {seq_len!r}: expected an integer > 0")
    context = _Context(mixture, fmt, unit, weights, resolved, notes, max_epochs, seq_len)
    return WRITERS[fmt](context), notes


def _one_line(text: str) -> str:
    """`text` with every control or line-break character escaped, so it cannot end a comment line."""
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if unicodedata.category(ch)[0] in "CZ" and ch != " "
        else ch
        for ch in text
    )


@dataclass
class _Context:
    mixture: OptimumMixture
    fmt: str
    unit: str
    weights: dict[str, float]
    paths: dict[str, str]
    notes: list[str]
    max_epochs: float | None = None
    seq_len: int | None = None

    def header(self, comment: str = "#", extra: tuple[str, ...] = ()) -> str:
        lines = [
            f"Data mixture for {self.fmt}, exported by mixlaw {__version__} from {self.mixture.source}.",
        ]
        if self.fmt in LOADED_BY:
            lines.append(f"Checked with {LOADED_BY[self.fmt]}.")
        lines += [*self.notes, *extra]
        total = self.mixture.predicted.get("total")
        if total is not None:
            line = f"Predicted total validation loss at this mixture: {total:.4f}"
            base = self.mixture.baseline_predicted.get("total")
            if base is not None:
                line += f" (baseline {base:.4f})"
            lines.append(line)
        return "\n".join(f"{comment} {_one_line(line)}" for line in lines) + "\n"


def _num(w: float) -> str:
    return f"{w:.{DECIMALS}f}".rstrip("0").rstrip(".") if w else "0"


def _yaml(data) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, width=1000)


def _megatron(c: _Context) -> str:
    # The content of a --data-args-path file (whitespace-separated "weight prefix ..."); also pastes after
    # --data-path. No header: Megatron splits the whole file on whitespace, so a comment would become a path.
    return " ".join(f"{_num(w)} {c.paths[d]}" for d, w in c.weights.items()) + "\n"


def _nemo(c: _Context) -> str:
    prefix: list = []
    for d, w in c.weights.items():
        prefix += [w, c.paths[d]]
    return c.header() + _yaml({"model": {"data": {"data_prefix": prefix}}})


def _nemo2(c: _Context) -> str:
    items = "\n".join(f"    {_num(w)!r}, {c.paths[d]!r},  # {d}" for d, w in c.weights.items())
    return c.header() + (
        "from nemo.collections.llm.gpt.data import PreTrainingDataModule\n\n"
        "# NeMo 2.x takes the blend as a flat [weight, prefix, ...] list (megatron-core get_blend_from_list).\n"
        "PATHS = [\n" + items + "\n]\n\n"
        "\n"
        "def data_module(**kwargs) -> PreTrainingDataModule:\n"
        '    """The mixture as a NeMo 2.x data module; kwargs: seq_length, tokenizer, global_batch_size, ..."""\n'
        "    return PreTrainingDataModule(paths=PATHS, **kwargs)\n"
    )


def _olmo_core(c: _Context) -> str:
    sources = []
    for d, w in c.weights.items():
        source = {"source_name": d, "target_ratio": w, "paths": [c.paths[d]]}
        if c.max_epochs is not None and c.max_epochs > 1:
            source["max_repetition_ratio"] = float(c.max_epochs)
        sources.append(source)
    extra = (
        "This is the source_list of olmo_core.data.source_mixture.SourceMixtureDatasetConfig: "
        "SourceMixtureDatasetConfig(source_list=SourceMixtureList.from_dict(this['source_list']), "
        "requested_tokens=..., global_batch_size=...) inside NumpyFSLDatasetConfig(source_mixture_config=...).",
    )
    if c.max_epochs is not None:
        extra += (
            f"max_repetition_ratio {c.max_epochs:g} is the optimizer's epoch limit (OPT.json "
            "constraints.max_epochs)"
            + (" (1 is olmo-core's default, so it is not written)" if c.max_epochs <= 1 else ""),
        )
    return c.header(extra=extra) + _yaml({"source_list": {"sources": sources}})


def _nanotron(c: _Context) -> str:
    stage = {
        "name": "stable",
        "start_training_step": 1,
        "data": {
            "seed": 1234,
            "num_loading_workers": 0,
            "dataset": {
                "dataset_folder": [c.paths[d] for d in c.weights],
                "dataset_weights": list(c.weights.values()),
            },
        },
    }
    return c.header(extra=("dataset_folder entries are datatrove-tokenized folders",)) + _yaml(
        {"data_stages": [stage]}
    )


def _mosaic(c: _Context) -> str:
    streams = {}
    for d, w in c.weights.items():
        path = c.paths[d]
        location = {"remote": path, "local": f"cache/{d}"} if "://" in path else {"local": path}
        streams[d] = {**location, "split": "train", "proportion": w}
    return c.header() + _yaml({"train_loader": {"name": "text", "dataset": {"streams": streams}}})


def _litgpt(c: _Context) -> str:
    dirs = "\n".join(f"    {c.paths[d]!r},  # {d}" for d in c.weights)
    weights = ", ".join(_num(w) for w in c.weights.values()) + ("," if len(c.weights) == 1 else "")
    if c.seq_len is None:
        block = "BLOCK_SIZE = 2049  # seq_len + 1 (placeholder: pass --seq-len to set it)\n"
    else:
        block = f"BLOCK_SIZE = {c.seq_len + 1}  # seq_len + 1\n"
    return c.header() + (
        "from litdata.streaming import CombinedStreamingDataset, StreamingDataset, TokensLoader\n\n"
        + block
        + "INPUT_DIRS = [\n"
        + dirs
        + "\n]\n"
        f"WEIGHTS = ({weights})\n\n"
        "train_dataset = CombinedStreamingDataset(\n"
        "    datasets=[StreamingDataset(input_dir=d, item_loader=TokensLoader(block_size=BLOCK_SIZE), shuffle=True)\n"
        "              for d in INPUT_DIRS],\n"
        "    seed=42,\n"
        "    weights=WEIGHTS,\n"
        "    iterate_over_all=False,  # required with weights\n"
        ")\n"
    )


def _hf_datasets(c: _Context) -> str:
    names = "\n".join(f"    {c.paths[d]!r},  # {d}" for d in c.weights)
    probabilities = ", ".join(_num(w) for w in c.weights.values())
    return c.header() + (
        "from datasets import interleave_datasets, load_dataset\n\n"
        "SOURCES = [\n" + names + "\n]\n"
        f"PROBABILITIES = [{probabilities}]\n\n"
        "mixture = interleave_datasets(\n"
        '    [load_dataset(source, split="train", streaming=True) for source in SOURCES],\n'
        "    probabilities=PROBABILITIES,\n"
        "    seed=0,\n"
        '    stopping_strategy="all_exhausted",\n'
        ")\n"
    )


def _json(c: _Context) -> str:
    out = {"unit": c.unit, "weights": c.weights}
    if c.paths:
        out["paths"] = c.paths
    out["notes"] = c.notes
    if c.mixture.predicted:
        out["predicted"] = c.mixture.predicted
    out["source"] = c.mixture.source
    out["mixlaw_version"] = __version__
    return json.dumps(out, indent=2) + "\n"


def regmix_prefix(domain: str, kind: str = REGMIX_TRAIN) -> str:
    """RegMix's file prefix of a domain: `train_<domain>` (a name that already has the prefix keeps it)."""
    return domain if domain.startswith(kind) else kind + domain.removeprefix(REGMIX_TRAIN)


def _regmix_yaml(c: _Context) -> str:
    # RegMix's data_yaml_file: train: {file prefix: weight}, valid: {file prefix: weight}. Its loader deletes
    # both keys unconditionally and globs f"{prefix}*" in the data folder, so keys are `train_<domain>` prefixes.
    train = {c.paths.get(d, regmix_prefix(d)): w for d, w in c.weights.items()}
    valid_names = [v for v in c.mixture.predicted if v not in ("total", "objective")] or list(c.weights)
    valid = {regmix_prefix(v, REGMIX_VALID): 1.0 for v in valid_names if not _unsafe(v)}
    return c.header() + _yaml({"train": train, "valid": valid})


WRITERS: dict[str, Callable[[_Context], str]] = {
    "megatron": _megatron,
    "nemo": _nemo,
    "nemo2": _nemo2,
    "olmo-core": _olmo_core,
    "litgpt": _litgpt,
    "mosaic": _mosaic,
    "hf-datasets": _hf_datasets,
    "nanotron": _nanotron,
    "json": _json,
    "yaml": _regmix_yaml,
}
