"""Tokenizers: lossless round trips on code (whitespace kept), byte counts, reuse by hash."""

import pytest

from mixlaw.train import sources
from mixlaw.train.corpus import demo_corpus_config, prepare_corpus
from mixlaw.train.tokenizer import ByteTokenizer

CODE = 'def f(x):\n\tif x:   # tab and spaces\n\t\treturn  x * 2\n\n\n    y = "a  b"\r\n\n'


def test_byte_tokenizer_round_trip():
    tok = ByteTokenizer()
    ids = tok.encode(CODE)
    assert tok.decode(ids) == CODE
    assert tok.token_bytes()[ids].sum() == len(CODE.encode())


def test_bpe_round_trip_on_code_keeps_whitespace(tmp_path):
    pytest.importorskip("tokenizers")
    from mixlaw.train.tokenizer import BPETokenizer, train_bpe

    sample = [d for _, d in zip(range(30), sources.iter_stdlib_code())]
    tok = train_bpe(sample, 600, tmp_path / "tokenizer.json")
    for text in [CODE, sample[0][:3000], "ünïcödé\t\t  \n  x"]:
        ids = tok.encode(text)
        assert tok.decode(ids) == text
        assert tok.token_bytes()[ids].sum() == len(text.encode())
    joined = "".join(sample)
    assert len(tok.encode(joined)) < len(joined.encode()) / 1.5  # it compresses
    again = BPETokenizer(tmp_path / "tokenizer.json")
    assert again.id == tok.id and again.id.startswith("bpe-")


def test_bpe_corpus_reuses_the_tokenizer_by_hash(tmp_path):
    pytest.importorskip("tokenizers")
    cfg = demo_corpus_config(
        max_bytes=30_000, math_tokens=8_000, tokenizer="bpe", vocab_size=300, valid_fraction=0.2
    )
    a = prepare_corpus(cfg, cache_dir=tmp_path)
    b = prepare_corpus(cfg, cache_dir=tmp_path, rebuild=True)
    assert a.manifest["tokenizer"]["id"] == b.manifest["tokenizer"]["id"]
    assert len(list((tmp_path / "tokenizers").glob("*/tokenizer.json"))) == 1
    math = a.domain_info("math")
    assert 0 < math["tokens"]["train"] + math["tokens"]["valid"] <= 8_000
