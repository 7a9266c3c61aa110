"""`mixlaw export`: golden files for every format, unit conversion, and input errors (exit 2)."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path

import pytest
import yaml

import mixlaw
from mixlaw.export import EXTENSIONS, FORMATS, load_mixture, round_shares, to_documents

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
