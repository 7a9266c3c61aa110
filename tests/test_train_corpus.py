"""Corpus: demo domains disjoint, split and manifest, local file and Hugging Face sources, tokenizers."""

import ast
import io
import json
import tokenize

import numpy as np
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.train import sources
from mixlaw.train.corpus import (
    Corpus,
    chunk_document,
    demo_corpus_config,
    is_valid_doc,
    parse_corpus_config,
    prepare_corpus,
)
from mixlaw.train.tokenizer import ByteTokenizer


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    cfg = demo_corpus_config(max_bytes=60_000, math_tokens=20_000, tokenizer="bytes", valid_fraction=0.2)
    return prepare_corpus(cfg, cache_dir=tmp_path_factory.mktemp("cache"))


def test_demo_domains_are_disjoint_and_nonempty(demo):
    assert demo.domains == ["code", "docs", "math-prose", "math"]
    owner = {}
    for d in demo.domains:
        for split in ("train", "valid"):
            docs = list(demo.documents(d, split))
            assert docs, (d, split)
            for doc in docs:
                assert owner.setdefault(doc["sha256"], d) == d, (
                    f"document shared by {owner[doc['sha256']]} and {d}"
                )
                assert is_valid_doc(doc["sha256"], 0.2) == (split == "valid") or doc is docs[0]


def test_code_domain_has_no_comments_or_docstrings(demo):
    for text in [d for _, d in zip(range(5), sources.iter_stdlib_code())]:
        toks = list(tokenize.generate_tokens(io.StringIO(text).readline))
        assert not [t for t in toks if t.type == tokenize.COMMENT]
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)) and node.body:
                first = node.body[0]
                assert not (
                    isinstance(first, ast.Expr)
                    and isinstance(getattr(first, "value", None), ast.Constant)
                    and isinstance(first.value.value, str)
                )
    for doc in demo.documents("code", "train"):  # corpus documents are chunks of such files
        assert not any(line.lstrip().startswith("#") for line in doc["text"].splitlines())


def test_manifest_records_sources_versions_and_counts(demo):
    m = demo.manifest
    assert m["created_with"]["python"] and "packages" in m["created_with"]
    assert m["tokenizer"]["kind"] == "bytes"
    for d in m["domains"]:
        for split in ("train", "valid"):
            arr = demo.tokens(d["name"], split)
            assert arr.size == d["tokens"][split] > 0
            assert len(d["sha256"][split]) == 64
            assert d["bytes"][split] > 0
    math = next(d for d in m["domains"] if d["name"] == "math")
    assert math["tokens"]["train"] + math["tokens"]["valid"] <= 20_000
    assert demo.token_counts()["math"] == math["tokens"]["train"]


def test_cache_is_reused(demo):
    cfg = demo_corpus_config(max_bytes=60_000, math_tokens=20_000, tokenizer="bytes", valid_fraction=0.2)
    again = prepare_corpus(cfg, cache_dir=demo.path.parent.parent)
    assert again.path == demo.path and again.id == demo.id


def test_strip_code_keeps_code_and_moves_text_to_docs():
    src = '"""Module doc."""\nimport os  # why\n\n\ndef f(a):\n    """Only a docstring."""\n\n\nclass C:\n    """Doc."""\n    x = 1  # one\n'
    code = sources.strip_code(src)
    assert "Module doc" not in code and "why" not in code and "Doc." not in code
    assert "def f(a):\n    pass" in code and "x = 1" in code
    docs = sources.docs_of(src, min_comment_chars=1)
    assert "Module doc." in docs and "Only a docstring." in docs and "why" in docs


def test_chunking_splits_long_documents_at_paragraphs():
    text = "\n\n".join(f"paragraph {i} " + "x" * 300 for i in range(40))
    pieces = chunk_document(text, 2048)
    assert "".join(pieces) == text
    assert all(len(p.encode()) <= 2048 for p in pieces)


def test_local_file_sources(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    import pyarrow as pa

    (tmp_path / "txt").mkdir()
    for i in range(30):
        (tmp_path / "txt" / f"{i}.txt").write_text(f"story {i}: " + "once upon a time " * 20)
    with open(tmp_path / "web.jsonl", "w") as fh:
        for i in range(40):
            fh.write(json.dumps({"content": f"web page {i} " + "lorem ipsum " * 30}) + "\n")
    pq.write_table(
        pa.table({"body": [f"row {i} " + "alpha beta " * 25 for i in range(40)]}), tmp_path / "t.parquet"
    )
    raw = {
        "valid_fraction": 0.2,
        "domains": [
            {"name": "stories", "source": "files", "paths": ["txt/*.txt"]},
            {"name": "web", "source": "files", "paths": ["web.jsonl"], "text_field": "content"},
            {"name": "table", "source": "files", "paths": ["*.parquet"], "text_field": "body"},
        ],
    }
    corpus = prepare_corpus(parse_corpus_config(raw, "cfg", base_dir=tmp_path), cache_dir=tmp_path / "cache")
    info = {d["name"]: d for d in corpus.manifest["domains"]}
    assert info["stories"]["documents"]["train"] + info["stories"]["documents"]["valid"] == 30
    assert info["web"]["documents"]["train"] + info["web"]["documents"]["valid"] == 40
    assert info["table"]["documents"]["train"] + info["table"]["documents"]["valid"] == 40
    text = ByteTokenizer().decode(corpus.tokens("web", "train")[:200])
    assert text.startswith("web page")


def test_missing_files_and_bad_fields_are_one_line_errors(tmp_path):
    raw = {"domains": [{"name": "web", "source": "files", "paths": ["nope/*.jsonl"]}]}
    with pytest.raises(MixlawInputError, match="no files match 'nope/\\*.jsonl'"):
        prepare_corpus(parse_corpus_config(raw, "cfg", base_dir=tmp_path), cache_dir=tmp_path)
    (tmp_path / "a.jsonl").write_text('{"body": "x"}\n')
    raw = {"domains": [{"name": "web", "source": "files", "paths": ["a.jsonl"]}]}
    with pytest.raises(MixlawInputError, match="no text field 'text'"):
        prepare_corpus(parse_corpus_config(raw, "cfg", base_dir=tmp_path), cache_dir=tmp_path)
    with pytest.raises(MixlawInputError, match="source"):
        parse_corpus_config({"domains": [{"name": "x", "source": "ftp"}]})
    with pytest.raises(MixlawInputError, match="clashes"):
        parse_corpus_config(
            {"domains": [{"name": "a-b", "source": "stdlib-code"}, {"name": "a_b", "source": "stdlib-docs"}]}
        )


def test_hugging_face_source_on_a_local_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"text": [f"document number {i}: " + "words " * 40 for i in range(50)], "id": list(range(50))}
    ds_dir = tmp_path / "my_dataset"
    ds_dir.mkdir()
    datasets.Dataset.from_dict(rows).to_parquet(str(ds_dir / "train.parquet"))
    raw = {
        "valid_fraction": 0.2,
        "domains": [
            {"name": "hfdom", "source": "hf", "dataset": str(ds_dir), "split": "train", "text_field": "text"}
        ],
    }
    corpus = prepare_corpus(parse_corpus_config(raw, "cfg", base_dir=tmp_path), cache_dir=tmp_path / "cache")
    info = corpus.domain_info("hfdom")
    assert info["documents"]["train"] + info["documents"]["valid"] == 50
    bad = {"domains": [{"name": "hfdom", "source": "hf", "dataset": str(ds_dir), "text_field": "body"}]}
    with pytest.raises(MixlawInputError, match="no field 'body'"):
        prepare_corpus(parse_corpus_config(bad, "cfg", base_dir=tmp_path), cache_dir=tmp_path / "cache2")


def test_corpus_open_errors(tmp_path):
    with pytest.raises(MixlawInputError, match="not a prepared corpus"):
        Corpus(tmp_path)
    assert np.dtype(np.uint16)  # corpus token arrays are uint16 for vocabularies up to 65535
