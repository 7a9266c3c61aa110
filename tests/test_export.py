"""`mixlaw export`: golden files for every format, unit conversion, and input errors (exit 2)."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
import yaml

import mixlaw
from mixlaw.exporters import EXTENSIONS, FORMATS, load_mixture, round_shares, to_documents

GOLDEN = Path(__file__).parent / "golden"
OPT = GOLDEN / "export_opt.json"
DOC_TOKENS = GOLDEN / "export_doc_tokens.csv"
PATHS = ["web=s3://bucket/web", "code=data/code"]
# Regenerate with MIXLAW_UPDATE_GOLDEN=1 pytest tests/test_export.py (then review the diff).
UPDATE = os.environ.get("MIXLAW_UPDATE_GOLDEN") == "1"
CASES = [(fmt, f"{fmt}.{EXTENSIONS[fmt]}", []) for fmt in FORMATS] + [
    ("hf-datasets", "hf-datasets.documents.py", ["--unit", "documents", "--avg-doc-tokens", str(DOC_TOKENS)]),
    ("json", "json.documents.json", ["--avg-doc-tokens", str(DOC_TOKENS), "--unit", "documents"]),
]


@pytest.mark.parametrize(("fmt", "golden", "extra"), CASES, ids=[c[1] for c in CASES])
def test_export_golden(cli, tmp_path, fmt, golden, extra):
    out = tmp_path / golden
    code, stdout, err = cli("export", OPT, "--format", fmt, "--paths", *PATHS, "--out", out, *extra)
    assert code == 0, err
    assert stdout == ""
    text = out.read_text().replace(mixlaw.__version__, "<version>")  # a release must not change the goldens
    path = GOLDEN / "export" / golden
    if UPDATE:
        path.write_text(text)
    assert text == path.read_text(), f"{golden} differs from the golden file"
    # the exporter says what the weights mean
    unit = "DOCUMENTS" if "documents" in extra else "TOKENS"
    assert f"shares of {unit}" in err
    # the output parses and its weights sum to 1
    weights = _weights(fmt, text)
    assert sum(weights) == pytest.approx(1.0, abs=1e-9)
    assert len(weights) == 4  # the zero-share domain is left out


def _weights(fmt: str, text: str) -> list[float]:
    if fmt == "megatron":
        return [float(v) for v in text.split()[::2]]
    if fmt in ("litgpt", "hf-datasets", "nemo2"):
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and node.targets[0].id in ("WEIGHTS", "PROBABILITIES"):
                return list(ast.literal_eval(node.value))
            if isinstance(node, ast.Assign) and node.targets[0].id == "PATHS":
                return [float(v) for v in ast.literal_eval(node.value)[::2]]
        raise AssertionError("no weights in the snippet")
    if fmt == "json":
        return list(json.loads(text)["weights"].values())
    data = yaml.safe_load(text)
    if fmt == "nemo":
        return data["model"]["data"]["data_prefix"][::2]
    if fmt == "olmo-core":
        return [s["target_ratio"] for s in data["source_list"]["sources"]]
    if fmt == "mosaic":
        return [s["proportion"] for s in data["train_loader"]["dataset"]["streams"].values()]
    if fmt == "nanotron":
        return data["data_stages"][0]["data"]["dataset"]["dataset_weights"]
    return list(data["train"].values())


def test_export_to_stdout_and_document_conversion(cli):
    code, out, err = cli(
        "export", OPT, "--format", "json", "--avg-doc-tokens", DOC_TOKENS, "--unit", "documents"
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["unit"] == "documents"
    # documents per domain are proportional to token share / mean document length
    expected = to_documents(
        {"web": 0.4512345, "code": 0.2487655, "books": 0.2, "math": 0.1},
        {"web": 650, "code": 2100, "books": 48000, "math": 310},
    )
    assert result["weights"] == pytest.approx(expected, abs=1e-6)


def test_round_shares_sum_exactly_one():
    shares = round_shares({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})
    assert sum(shares.values()) == 1.0 and set(shares.values()) <= {0.333333, 0.333334}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--format", "megatron", "--unit", "documents", "--avg-doc-tokens", str(DOC_TOKENS)],
            "--unit documents does not apply to megatron",
        ),
        (["--format", "hf-datasets", "--unit", "documents"], "--unit documents needs --avg-doc-tokens"),
        (["--format", "json", "--paths", "nope=x"], "unknown domain 'nope'"),
        (["--format", "json", "--paths", "web"], "expected DOMAIN=PATH"),
    ],
)
def test_export_input_errors(cli, args, message):
    code, out, err = cli("export", OPT, *args)
    assert code == 2 and message in err and out == ""
    assert len(err.strip().splitlines()) == 1


def test_export_bad_files(cli, tmp_path):
    code, _, err = cli("export", tmp_path / "missing.json", "--format", "json")
    assert code == 2 and "not found" in err
    bad = tmp_path / "bad.json"
    bad.write_text('{"mixture": {"p_a": 0.7, "p_b": 0.7}}')
    code, _, err = cli("export", bad, "--format", "json")
    assert code == 2 and "sum to 1.4" in err
    bad.write_text('{"predicted": {}}')
    code, _, err = cli("export", bad, "--format", "json")
    assert code == 2 and "no 'mixture'" in err
    docs = tmp_path / "docs.csv"
    docs.write_text("domain,avg_doc_tokens\nweb,100\n")
    code, _, err = cli("export", OPT, "--format", "json", "--unit", "documents", "--avg-doc-tokens", docs)
    assert code == 2 and "no mean document length for domain(s) code" in err
    with pytest.raises(SystemExit) as exit_info:  # argparse: usage error, exit 2
        cli("export", OPT, "--format", "parquet")
    assert exit_info.value.code == 2


def test_api_export_matches_cli():
    text = mixlaw.export(OPT, "olmo-core", paths={"web": "s3://bucket/web", "code": "data/code"})
    assert text.replace(mixlaw.__version__, "<version>") == (GOLDEN / "export" / "olmo-core.yaml").read_text()
    from_dict = mixlaw.export(
        json.loads(OPT.read_text()), "json", paths={"web": "s3://bucket/web", "code": "data/code"}
    )
    assert (
        json.loads(from_dict)["weights"]
        == json.loads((GOLDEN / "export" / "json.json").read_text())["weights"]
    )
    assert load_mixture(OPT).predicted["total"] == 2.81234


# ------------------------------------------------------------------------------------------ untrusted names


@pytest.mark.parametrize(
    ("fmt", "domain"),
    [
        ("hf-datasets", "x\n__import__('os').system('echo pwned')\n#"),
        ("litgpt", "web') or __import__('os') #"),
        ("olmo-core", "web\nrequested_tokens: 1"),
        ("nanotron", "web\u2028evil: 1"),
        ("mosaic", "web # comment"),
        ("yaml", 'web"'),
    ],
)
def test_export_refuses_names_that_change_the_file(cli, tmp_path, fmt, domain):
    opt = tmp_path / "opt.json"
    opt.write_text(json.dumps({"mixture": {"p_" + domain: 0.6, "p_code": 0.4}}))
    out = tmp_path / "out.txt"
    code, stdout, err = cli("export", opt, "--format", fmt, "--out", out)
    assert code == 2 and not out.exists()
    assert len(err.strip().splitlines()) == 1 and repr(domain) in err


def test_export_refuses_whitespace_paths_where_megatron_splits(cli, tmp_path):
    for fmt in ("megatron", "nemo", "nemo2"):
        code, _, err = cli("export", OPT, "--format", fmt, "--paths", "web=data/my web")
        assert code == 2 and "whitespace" in err and "'web'" in err
    code, _, err = cli("export", OPT, "--format", "olmo-core", "--paths", "web=data/web\nrequested_tokens: 1")
    assert code == 2 and "control" in err
    # a placeholder path is checked too: a domain name with a space cannot reach megatron unsplit
    spaced = tmp_path / "spaced.json"
    spaced.write_text(json.dumps({"mixture": {"p_dm math": 0.5, "p_code": 0.5}}))
    code, _, err = cli("export", spaced, "--format", "megatron")
    assert code == 2 and "'dm math'" in err and "--paths" in err
    code, _, err = cli("export", spaced, "--format", "megatron", "--paths", "dm math=data/dm_math")
    assert code == 0, err


def test_crafted_source_name_stays_in_its_comment(cli, tmp_path):
    # the OPT.json file name goes into the header: a newline in it must not start a line of code
    opt = tmp_path / "opt\n__import__('os').system('echo pwned')\n#.json"
    opt.write_text(OPT.read_text())
    for fmt in ("hf-datasets", "litgpt", "nemo2"):
        code, text, err = cli("export", opt, "--format", fmt)
        assert code == 0, err
        statements = [type(node).__name__ for node in ast.parse(text).body]
        assert "Expr" not in statements  # only imports, assignments and a def: no bare call
        assert "__import__('os')" not in "".join(
            line for line in text.splitlines() if not line.startswith("#")
        )
    for fmt in ("olmo-core", "mosaic", "nanotron", "nemo", "yaml"):
        code, text, err = cli("export", opt, "--format", fmt)
        assert code == 0, err
        assert list(yaml.safe_load(text)) == [
            {
                "olmo-core": "source_list",
                "mosaic": "train_loader",
                "nanotron": "data_stages",
                "nemo": "model",
            }.get(fmt, "train")
        ] + (["valid"] if fmt == "yaml" else [])


def test_zero_share_domains_need_no_document_length(cli, tmp_path):
    docs = tmp_path / "docs.csv"  # no length for `legal`, whose share is 0 and which is left out
    docs.write_text("domain,avg_doc_tokens\nweb,650\ncode,2100\nbooks,48000\nmath,310\n")
    code, _, err = cli(
        "export", OPT, "--format", "hf-datasets", "--unit", "documents", "--avg-doc-tokens", docs
    )
    assert code == 0, err


def test_olmix_result_file_exports(cli, tmp_path):
    # Olmix writes its proposed mixture as a list of {domain, weight}; sums within 0.01 are accepted
    result = tmp_path / "olmix_result.json"
    result.write_text(json.dumps([{"domain": "dclm", "weight": 0.604}, {"domain": "code", "weight": 0.4}]))
    code, out, err = cli("export", result, "--format", "json")
    assert code == 0, err
    assert json.loads(out)["weights"] == pytest.approx({"dclm": 0.604 / 1.004, "code": 0.4 / 1.004}, abs=1e-6)


# ------------------------------------------------------------------------------------------ consumers
# Each test loads the export with the framework's own code (installed by `.[frameworks]`, see pyproject.toml)
# and checks the weights it will sample, in its unit, against the mixture.

SHARES = {"web": 0.451234, "code": 0.248766, "books": 0.2, "math": 0.1}  # OPT's mixture rounded to 6 decimals


def _export(cli, tmp_path, fmt, *extra, opt=OPT):
    out = tmp_path / f"export.{EXTENSIONS[fmt]}"
    code, _, err = cli("export", opt, "--format", fmt, "--out", out, *extra)
    assert code == 0, err
    return out.read_text()


def test_megatron_core_blend(cli, tmp_path):
    utils = pytest.importorskip(
        "megatron.core.datasets.utils", reason="megatron-core not installed (.[frameworks])"
    )
    text = _export(
        cli, tmp_path, "megatron", "--paths", "web=/d/web_text_document", "code=/d/code_text_document"
    )
    prefixes, weights = utils.get_blend_from_list(text.split())  # what --data-args-path / --data-path parse
    assert prefixes[:2] == ["/d/web_text_document", "/d/code_text_document"]
    assert dict(zip(SHARES, weights)) == pytest.approx(SHARES)  # samples of seq_len tokens = token shares


def test_nemo_yaml_and_nemo2_paths_blend(cli, tmp_path):
    utils = pytest.importorskip(
        "megatron.core.datasets.utils", reason="megatron-core not installed (.[frameworks])"
    )
    data = yaml.safe_load(_export(cli, tmp_path, "nemo"))
    # NeMo <= 2.5 hands model.data.data_prefix to megatron-core's get_blend_from_list
    prefixes, weights = utils.get_blend_from_list(data["model"]["data"]["data_prefix"])
    assert dict(zip(SHARES, weights)) == pytest.approx(SHARES) and prefixes[2] == "data/books_text_document"
    tree = ast.parse(_export(cli, tmp_path, "nemo2"))
    paths = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign))
    # NeMo 2.x PreTrainingDataModule(paths=...) calls the same get_blend_from_list on the list
    prefixes2, weights2 = utils.get_blend_from_list(paths)
    assert prefixes2 == prefixes and weights2 == pytest.approx(weights)


def _olmo_opt(tmp_path, max_epochs):
    data = json.loads(OPT.read_text())
    data["constraints"] = {"max_epochs": max_epochs, "target_tokens": 40000.0}
    opt = tmp_path / "opt_epochs.json"
    opt.write_text(json.dumps(data))
    return opt


def test_olmo_core_source_mixture_builds_token_shares(cli, tmp_path):
    np = pytest.importorskip("numpy")
    sm = pytest.importorskip(
        "olmo_core.data.source_mixture", reason="ai2-olmo-core not installed (.[frameworks])"
    )
    # token files: books has 6,000 tokens but needs 0.2 x 40,000 = 8,000, so it repeats (max_epochs 2)
    sizes = {"web": 40000, "code": 40000, "books": 6000, "math": 40000}
    paths = []
    for d, n in sizes.items():
        (tmp_path / d).mkdir()
        np.arange(n, dtype=np.uint32).tofile(tmp_path / d / "part-0.npy")
        paths.append(f"{d}={tmp_path / d}/*.npy")
    for epochs, loads in ((2.0, True), (1.0, False)):
        text = _export(cli, tmp_path, "olmo-core", "--paths", *paths, opt=_olmo_opt(tmp_path, epochs))
        sources = sm.SourceMixtureList.from_dict(yaml.safe_load(text)["source_list"])
        sources.validate()
        config = sm.SourceMixtureDatasetConfig(
            source_list=sources,
            requested_tokens=40000,
            global_batch_size=64 * 10,
            quiet=True,
            render_tables=False,
        )
        if not loads:  # without the epoch limit olmo-core refuses, as it should
            with pytest.raises(Exception, match="Insufficient tokens for source: books"):
                config.build(npdtype=np.uint32, sequence_length=64)
            continue
        built = config.build(npdtype=np.uint32, sequence_length=64)
        tokens = {s.name: sum(p.tokens for p in s.path_tokens) for s in built.sources}
        total = sum(tokens.values())
        # olmo-core rounds each source to whole 64-token instances: at most 2 instances of 40,000 tokens off
        assert {d: t / total for d, t in tokens.items()} == pytest.approx(SHARES, abs=2 * 64 / 40000)


def _import_streaming():
    # `import streaming` imports its vision datasets, which need a torchvision built for the installed torch
    # (PyPI has only CUDA builds); Stream and StreamingDataset live in streaming.base and need none of it.
    import importlib.util
    import sys
    import types

    spec = importlib.util.find_spec("streaming")
    if spec is None:
        pytest.skip("mosaicml-streaming not installed (.[frameworks])")
    if "streaming" not in sys.modules:
        package = types.ModuleType("streaming")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["streaming"] = package
    from streaming.base import MDSWriter, StreamingDataset
    from streaming.base.stream import Stream

    return MDSWriter, Stream, StreamingDataset


def test_mosaic_streams_sample_by_proportion(cli, tmp_path):
    MDSWriter, Stream, StreamingDataset = _import_streaming()
    paths = []
    for d in SHARES:
        with MDSWriter(out=str(tmp_path / d), columns={"domain": "str"}) as writer:
            for _ in range(50):
                writer.write({"domain": d})
        paths.append(f"{d}={tmp_path / d}")
    data = yaml.safe_load(_export(cli, tmp_path, "mosaic", "--paths", *paths))
    streams = [
        Stream(local=s["local"], split=None, proportion=s["proportion"])
        for s in data["train_loader"]["dataset"]["streams"].values()
    ]
    dataset = StreamingDataset(streams=streams, epoch_size=10000, shuffle=False, batch_size=1)
    counts: dict[str, int] = {}
    for sample in dataset:  # one epoch: streams are resampled to their proportion of epoch_size
        counts[sample["domain"]] = counts.get(sample["domain"], 0) + 1
    total = sum(counts.values())
    # packed MDS samples are fixed-length token blocks, so sample shares are token shares
    assert {d: c / total for d, c in counts.items()} == pytest.approx(SHARES, abs=2e-3)


def test_hf_datasets_interleave_samples_by_probability(cli, tmp_path, monkeypatch):
    pytest.importorskip("datasets", reason="datasets not installed (.[train] or .[frameworks])")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    paths = []
    for d in SHARES:
        (tmp_path / d).mkdir()
        (tmp_path / d / "train.jsonl").write_text(
            "".join(json.dumps({"domain": d}) + "\n" for _ in range(4000))
        )
        paths.append(f"{d}={tmp_path / d}")
    namespace: dict = {}
    exec(compile(_export(cli, tmp_path, "hf-datasets", "--paths", *paths), "export.py", "exec"), namespace)
    counts: dict[str, int] = {}
    for row in namespace["mixture"].take(4000):
        counts[row["domain"]] = counts.get(row["domain"], 0) + 1
    assert sum(counts.values()) == 4000  # interleave_datasets samples examples: here one row = one block
    assert {d: c / 4000 for d, c in counts.items()} == pytest.approx(SHARES, abs=0.03)


def test_litdata_combined_dataset_weights(cli, tmp_path):
    pytest.importorskip("litdata", reason="litdata not installed (.[frameworks])")
    from litdata.streaming.item_loader import TokensLoader
    from litdata.streaming.writer import BinaryWriter

    np = pytest.importorskip("numpy")
    torch = pytest.importorskip("torch")
    paths = []
    for i, d in enumerate(SHARES):
        writer = BinaryWriter(str(tmp_path / d), chunk_size=65 * 16, item_loader=TokensLoader())
        for j in range(64):
            writer[j] = torch.full((65,), i, dtype=torch.int64)
        writer.done()
        writer.merge()
        paths.append(f"{d}={tmp_path / d}")
    text = _export(cli, tmp_path, "litgpt", "--paths", *paths, "--seq-len", "64")
    namespace: dict = {}
    exec(compile(text, "export.py", "exec"), namespace)
    dataset = namespace["train_dataset"]
    assert namespace["BLOCK_SIZE"] == 65
    assert dict(zip(SHARES, dataset._weights)) == pytest.approx(SHARES)
    counts = np.zeros(len(SHARES))
    for n, block in enumerate(dataset):
        counts[int(block[0])] += 1
        if n == 1999:
            break
    assert dict(zip(SHARES, counts / counts.sum())) == pytest.approx(SHARES, abs=0.04)


def _regmix_setup(
    config_file: Path, data_dir: Path
) -> tuple[list[tuple[str, float]], list[list[tuple[str, float]]]]:
    """RegMix's `setup()` data handling (model_training/pretrain/tinyllama.py of sail-sg/regmix), re-implemented:
    yaml.safe_load, `train`/`valid` read as (prefix, float(weight)), both keys deleted unconditionally, then each
    prefix globbed in the data folder (a prefix without files is skipped there, silently losing its weight)."""
    config = yaml.safe_load(config_file.read_text())
    train = [(k, float(v)) for k, v in config["train"].items()]
    valid = [[(k, float(v))] for k, v in config["valid"].items()]
    del config["train"]
    del config["valid"]  # KeyError on a file without `valid:`
    for prefix, _ in train:
        assert sorted(data_dir.glob(f"{prefix}*")), f"no RegMix file matches prefix {prefix!r}"
    return train, valid


def test_regmix_yaml_round_trip_keeps_file_prefixes(cli, tmp_path):
    from mixlaw.importers import import_regmix

    FIX = Path(__file__).parent / "fixtures" / "import"
    frame = import_regmix(str(FIX / "regmix_mixtures.csv"), str(FIX / "regmix_losses.csv"), renormalize=True)
    domains = [c[2:] for c in frame.columns if c.startswith("p_")]  # train_ prefix stripped by the importer
    opt = tmp_path / "opt.json"
    opt.write_text(json.dumps({"mixture": {f"p_{d}": 1 / len(domains) for d in domains}}))
    data_dir = tmp_path / "regmix_data"
    data_dir.mkdir()
    for d in domains:  # RegMix's prepared chunks are named <split>_<domain>-<n>.bin
        for split in ("train", "valid"):
            (data_dir / f"{split}_{d}-0000.bin").write_bytes(b"")
    out = tmp_path / "regmix.yaml"
    code, _, err = cli("export", opt, "--format", "yaml", "--out", out)
    assert code == 0, err
    train, valid = _regmix_setup(out, data_dir)
    assert [k for k, _ in train] == [f"train_{d}" for d in domains]
    assert sum(w for _, w in train) == pytest.approx(1.0)
    assert valid and all(sorted(data_dir.glob(f"{k}*")) for [(k, _)] in valid)


def test_nanotron_dataset_args(cli, tmp_path):
    data = yaml.safe_load(_export(cli, tmp_path, "nanotron"))
    dataset = data["data_stages"][0]["data"]["dataset"]
    # nanotron's NanosetDatasetsArgs since PR #228: dataset_folder list + dataset_weights list (token shares)
    assert set(dataset) == {"dataset_folder", "dataset_weights"}
    assert dict(zip(SHARES, dataset["dataset_weights"])) == pytest.approx(SHARES)
    try:
        import nanotron.config as config
    except ImportError:
        config = None
    if config is None or "dataset_weights" not in getattr(
        getattr(config, "NanosetDatasetsArgs", None), "__dataclass_fields__", {}
    ):
        pytest.skip(
            "the installed nanotron predates NanosetDatasetsArgs(dataset_folder, dataset_weights) "
            "(PyPI has only 0.4 of March 2024; install nanotron from source to run this check)"
        )
    import dacite

    args = dacite.from_dict(
        config.DataArgs, data["data_stages"][0]["data"], config=dacite.Config(strict=True)
    )
    assert args.dataset.dataset_weights == dataset["dataset_weights"]
