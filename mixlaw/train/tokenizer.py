"""Tokenizers: plain UTF-8 bytes (no dependency) and a byte-level BPE trained locally with HF `tokenizers`.

Both are lossless (whitespace and newlines survive a round trip) and append one end-of-text token per document.
Nothing is ever downloaded: a BPE tokenizer is trained here on the corpus' training split and saved as
`tokenizer.json`, identified by the sha256 of that file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.files import replacing

EOT = "<|endoftext|>"


class ByteTokenizer:
    """UTF-8 bytes as tokens 0..255 plus an end-of-text token 256 (vocab 257)."""

    kind = "bytes"
    vocab_size = 257
    eos_id = 256
    id = "bytes-v1"

    def encode(self, text: str) -> np.ndarray:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [self.encode(t) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(int(i) for i in ids if int(i) < 256).decode("utf-8", errors="replace")

    def token_bytes(self) -> np.ndarray:
        """Bytes of text per token id, shape (vocab,); the end-of-text token counts 0 bytes."""
        out = np.ones(self.vocab_size, dtype=np.int64)
        out[self.eos_id] = 0
        return out

    def describe(self) -> dict:
        return {"kind": self.kind, "id": self.id, "vocab_size": self.vocab_size}


class BPETokenizer:
    """Byte-level BPE (HF `tokenizers`) loaded from a local tokenizer.json."""

    kind = "bpe"

    def __init__(self, path: str | Path) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise MixlawInputError(
                "the BPE tokenizer needs the `tokenizers` package: pip install 'mixlaw[train]' "
                "(or use `tokenizer: bytes` in the corpus config)"
            ) from None
        self.path = Path(path)
        if not self.path.is_file():
            raise MixlawInputError(f"{self.path}: tokenizer file not found")
        try:
            self._tok = Tokenizer.from_file(str(self.path))
        except Exception as exc:  # tokenizers raises a plain Exception for bad JSON
            raise MixlawInputError(f"{self.path}: not a valid tokenizer.json: {exc}") from None
        self.id = "bpe-" + hashlib.sha256(self.path.read_bytes()).hexdigest()[:12]
        self.vocab_size = self._tok.get_vocab_size()
        eos = self._tok.token_to_id(EOT)
        if eos is None:
            raise MixlawInputError(f"{self.path}: tokenizer has no {EOT} token")
        self.eos_id = int(eos)

    def encode(self, text: str) -> np.ndarray:
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        encs = self._tok.encode_batch(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encs]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=True)

    def token_bytes(self) -> np.ndarray:
        """Bytes of text per token id: in byte-level BPE each character of a token stands for one byte."""
        out = np.zeros(self.vocab_size, dtype=np.int64)
        specials = {t.content for t in self._tok.get_added_tokens_decoder().values()}
        for tok, idx in self._tok.get_vocab().items():
            out[idx] = 0 if tok in specials else len(tok)
        return out

    def describe(self) -> dict:
        return {"kind": self.kind, "id": self.id, "vocab_size": self.vocab_size, "path": str(self.path)}


Tokenizer = ByteTokenizer | BPETokenizer


def train_bpe(texts: Iterable[str], vocab_size: int, out_path: str | Path) -> BPETokenizer:
    """Train a byte-level BPE on `texts` and save it as `out_path` (tokenizer.json). Deterministic."""
    try:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    except ImportError:
        raise MixlawInputError(
            "training a BPE tokenizer needs the `tokenizers` package: pip install 'mixlaw[train]' "
            "(or use `tokenizer: bytes` in the corpus config)"
        ) from None
    if vocab_size < 257 + 1:
        raise MixlawInputError(f"tokenizer vocab_size {vocab_size} must be at least 258 for a byte-level BPE")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[EOT],
        show_progress=False,
    )
    tok.train_from_iterator(_batched(texts), trainer=trainer)
    with replacing(out_path) as tmp:
        tok.save(str(tmp))
    return BPETokenizer(out_path)


def _batched(texts: Iterable[str], size: int = 256) -> Iterator[list[str]]:
    batch: list[str] = []
    for t in texts:
        batch.append(t)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def load_tokenizer(desc: dict) -> Tokenizer:
    """Load a tokenizer from its manifest description ({"kind": "bytes"} or {"kind": "bpe", "path": ...})."""
    if desc.get("kind") == "bytes":
        return ByteTokenizer()
    if desc.get("kind") == "bpe":
        return BPETokenizer(desc["path"])
    raise MixlawInputError(f"unknown tokenizer kind {desc.get('kind')!r} (expected bytes or bpe)")


def tokenizer_spec_key(spec: dict) -> str:
    """Stable text form of a tokenizer spec, for cache keys."""
    return json.dumps(spec, sort_keys=True)
