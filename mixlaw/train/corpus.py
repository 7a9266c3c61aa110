"""Domains, their sources, the per-domain train/validation split, tokenization and the cached corpus.

A corpus config (the `corpus:` block of a sweep config) lists domains, each a name plus a source:

    corpus:
      valid_fraction: 0.05            # share of documents held out for validation (by document hash)
      tokenizer: {kind: bpe, vocab_size: 2048, sample_bytes: 1000000}   # or: bytes, or a tokenizer.json path
      domains:
        - {name: code, source: stdlib-code, max_bytes: 3000000}
        - {name: web,  source: files, paths: ["data/web/*.jsonl"], text_field: text}
        - {name: wiki, source: hf, dataset: wikitext, config: wikitext-2-raw-v1, split: train, text_field: text}
        - {name: math, source: math-generator, max_tokens: 500000, seed: 0}

Building a corpus (`prepare_corpus`) reads every domain's documents in a fixed order, drops exact duplicates
within and across domains (the earlier domain keeps a shared document), assigns each document to train or
validation by the sha256 of its text, trains (or loads) the tokenizer on the training split, and writes per
domain and split one `.npy` array of token ids (documents joined by end-of-text) and the documents themselves
(`text/<domain>.<split>.jsonl`, with their sha256). The result is cached under
`$MIXLAW_CACHE/corpus/<name>-<key>/` with a `manifest.json` recording sources, Python and package versions,
sha256, bytes and tokens. The key hashes the config, the versions and the input files' sizes and mtimes, so a
change rebuilds and an unchanged config reuses the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.files import locked
from mixlaw.mixture import canonical_name
from mixlaw.train import sources
from mixlaw.train.tokenizer import BPETokenizer, ByteTokenizer, Tokenizer, load_tokenizer, train_bpe

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
SPLITS = ("train", "valid")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
column_name = canonical_name  # runs-table spelling of a domain (math-prose -> math_prose), see mixlaw.mixture


def cache_root() -> Path:
    """`$MIXLAW_CACHE`, else `$XDG_CACHE_HOME/mixlaw`, else `~/.cache/mixlaw`."""
    if os.environ.get("MIXLAW_CACHE"):
        return Path(os.environ["MIXLAW_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mixlaw"


# --------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class DomainConfig:
    """One domain: a name and where its documents come from. Budgets cap the bytes or tokens kept."""

    name: str
    source: str
    paths: tuple[str, ...] = ()
    text_field: str = "text"
    doc_separator: str | None = None
    dataset: str | None = None
    config: str | None = None
    split: str = "train"
    revision: str | None = None
    seed: int = 0
    max_bytes: int | None = None
    max_tokens: int | None = None
    max_docs: int | None = None
    max_doc_bytes: int | None = 8192


@dataclass(frozen=True)
class CorpusConfig:
    domains: tuple[DomainConfig, ...]
    name: str = "corpus"
    valid_fraction: float = 0.05
    tokenizer: dict = field(default_factory=lambda: {"kind": "bytes"})
    base_dir: str = "."  # relative file paths resolve against the config file's folder

    @property
    def domain_names(self) -> list[str]:
        return [d.name for d in self.domains]


_DOMAIN_KEYS = {f for f in DomainConfig.__dataclass_fields__}
_CORPUS_KEYS = {"name", "valid_fraction", "tokenizer", "domains"}


def parse_corpus_config(raw: object, where: str = "corpus", base_dir: str | Path = ".") -> CorpusConfig:
    """Validate a `corpus:` mapping; every error names the key and value."""
    if not isinstance(raw, dict):
        raise MixlawInputError(f"{where}: expected a mapping with a `domains:` list")
    unknown = set(raw) - _CORPUS_KEYS
    if unknown:
        raise MixlawInputError(f"{where}: unknown key(s) {sorted(unknown)} (allowed: {sorted(_CORPUS_KEYS)})")
    doms = raw.get("domains")
    if not isinstance(doms, list) or not doms:
        raise MixlawInputError(f"{where}.domains: expected a non-empty list of domains")
    out: list[DomainConfig] = []
    seen_cols: dict[str, str] = {}
    for i, d in enumerate(doms):
        w = f"{where}.domains[{i}]"
        if not isinstance(d, dict):
            raise MixlawInputError(
                f"{w}: expected a mapping like {{name: code, source: files, paths: [...]}}"
            )
        bad = set(d) - _DOMAIN_KEYS
        if bad:
            raise MixlawInputError(f"{w}: unknown key(s) {sorted(bad)}")
        name = d.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise MixlawInputError(f"{w}.name: {name!r} is not a valid domain name (letters, digits, - _ .)")
        col = column_name(name)
        if col in seen_cols:
            raise MixlawInputError(
                f"{w}.name: {name!r} clashes with domain {seen_cols[col]!r} (both map to p_{col})"
            )
        seen_cols[col] = name
        src = d.get("source")
        if src not in sources.SOURCE_KINDS:
            raise MixlawInputError(f"{w}.source: {src!r} is not one of {list(sources.SOURCE_KINDS)}")
        paths = d.get("paths", ())
        if isinstance(paths, str):
            paths = [paths]
        if src == "files" and not paths:
            raise MixlawInputError(f"{w}.paths: source files needs a list of files or globs")
        if src == "hf" and not d.get("dataset"):
            raise MixlawInputError(f"{w}.dataset: source hf needs a dataset name or local path")
        for key in ("max_bytes", "max_tokens", "max_docs", "max_doc_bytes"):
            v = d.get(key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
                raise MixlawInputError(f"{w}.{key}: {v!r} must be a positive integer")
        if src == "math-generator" and not (d.get("max_tokens") or d.get("max_bytes") or d.get("max_docs")):
            raise MixlawInputError(f"{w}: source math-generator is endless: give max_tokens (or max_bytes)")
        kwargs = dict(d)
        kwargs["paths"] = tuple(str(p) for p in paths)
        out.append(DomainConfig(**kwargs))
    vf = raw.get("valid_fraction", 0.05)
    if not isinstance(vf, (int, float)) or not 0 < vf < 1:
        raise MixlawInputError(f"{where}.valid_fraction: {vf!r} must be between 0 and 1")
    tok = raw.get("tokenizer", "bytes")
    tok = _parse_tokenizer(tok, f"{where}.tokenizer", Path(base_dir))
    name = raw.get("name", "corpus")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise MixlawInputError(f"{where}.name: {name!r} is not a valid name")
    return CorpusConfig(
        tuple(out), name=name, valid_fraction=float(vf), tokenizer=tok, base_dir=str(base_dir)
    )


def _parse_tokenizer(tok: object, where: str, base_dir: Path) -> dict:
    if tok in ("bytes", None):
        return {"kind": "bytes"}
    if isinstance(tok, str):
        if tok == "bpe":
            return {"kind": "bpe", "vocab_size": 2048, "sample_bytes": 1_000_000}
        path = Path(tok) if os.path.isabs(tok) else base_dir / tok
        if not path.is_file():
            raise MixlawInputError(f"{where}: {tok!r} is neither bytes, bpe nor an existing tokenizer.json")
        return {"kind": "file", "path": str(path.resolve())}
    if isinstance(tok, dict):
        kind = tok.get("kind")
        if kind == "bytes":
            return {"kind": "bytes"}
        if kind == "bpe":
            vs = tok.get("vocab_size", 2048)
            sb = tok.get("sample_bytes", 1_000_000)
            if not isinstance(vs, int) or vs < 258:
                raise MixlawInputError(f"{where}.vocab_size: {vs!r} must be an integer >= 258")
            if not isinstance(sb, int) or sb <= 0:
                raise MixlawInputError(f"{where}.sample_bytes: {sb!r} must be a positive integer")
            return {"kind": "bpe", "vocab_size": vs, "sample_bytes": sb}
        if kind == "file":
            return _parse_tokenizer(str(tok.get("path", "")), where + ".path", base_dir)
        raise MixlawInputError(f"{where}.kind: {kind!r} is not one of bytes, bpe, file")
    raise MixlawInputError(
        f"{where}: {tok!r} is not a tokenizer spec (bytes, bpe, {{kind: bpe, vocab_size: N}})"
    )


# --------------------------------------------------------------------------------------------- documents


def iter_domain_documents(d: DomainConfig, base_dir: Path) -> Iterator[str]:
    """The documents of one domain's source, in their fixed order (before dedup, split and budgets)."""
    if d.source == "stdlib-code":
        return sources.iter_stdlib_code()
    if d.source == "stdlib-docs":
        return sources.iter_stdlib_docs()
    if d.source == "sympy-docs":
        return sources.iter_sympy_docs()
    if d.source == "math-generator":
        return sources.iter_math_problems(seed=d.seed)
    if d.source == "files":
        files = sources.resolve_files(list(d.paths), base_dir, d.name)
        return sources.iter_files(files, d.text_field, d.name, d.doc_separator)
    if d.source == "hf":
        return sources.iter_hf(d.dataset or "", d.config, d.split, d.text_field, d.name, d.revision)
    raise MixlawInputError(f"domain {d.name!r}: unknown source {d.source!r}")


def chunk_document(text: str, limit: int | None) -> list[str]:
    """Split a long document into pieces of at most `limit` bytes at paragraph, then line, boundaries."""
    if not limit or len(text.encode("utf-8")) <= limit:
        return [text]
    out: list[str] = []
    cur = ""
    for unit in re.split(r"(?<=\n\n)", text):
        if len(unit.encode("utf-8")) > limit:  # a huge paragraph: fall back to lines, then characters
            pieces = []
            for line in unit.splitlines(keepends=True):
                while len(line.encode("utf-8")) > limit:
                    pieces.append(line[: limit // 4])
                    line = line[limit // 4 :]
                pieces.append(line)
        else:
            pieces = [unit]
        for piece in pieces:
            if cur and len((cur + piece).encode("utf-8")) > limit:
                out.append(cur)
                cur = ""
            cur += piece
    if cur:
        out.append(cur)
    return [p for p in out if p.strip()]


def doc_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def is_valid_doc(h: str, valid_fraction: float) -> bool:
    """The fixed split rule: a document is held out iff the first 8 hex digits of its sha256 / 16**8 < fraction."""
    return int(h[:8], 16) / 16**8 < valid_fraction


# --------------------------------------------------------------------------------------------- corpus


class Corpus:
    """A prepared corpus directory: manifest, tokenizer and per-domain token arrays."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        mf = self.path / "manifest.json"
        if not mf.is_file():
            raise MixlawInputError(f"{self.path}: not a prepared corpus (no manifest.json)")
        self.manifest = json.loads(mf.read_text())
        self.id: str = self.manifest["id"]
        self._tokenizer: Tokenizer | None = None
        self._arrays: dict[tuple[str, str], np.ndarray] = {}

    @property
    def domains(self) -> list[str]:
        return [d["name"] for d in self.manifest["domains"]]

    @property
    def tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            desc = dict(self.manifest["tokenizer"])
            if desc["kind"] == "bpe":
                desc["path"] = str(self.path / "tokenizer.json")
            self._tokenizer = load_tokenizer(desc)
        return self._tokenizer

    def tokens(self, domain: str, split: str) -> np.ndarray:
        """Token ids of one domain and split (memory-mapped, read-only), shape (n_tokens,)."""
        key = (domain, split)
        if key not in self._arrays:
            if domain not in self.domains:
                raise MixlawInputError(f"unknown domain {domain!r}; the corpus has {self.domains}")
            fname = self.path / "tokens" / f"{column_name(domain)}.{split}.npy"
            self._arrays[key] = np.load(fname, mmap_mode="r", allow_pickle=False)
        return self._arrays[key]

    def documents(self, domain: str, split: str) -> Iterator[dict]:
        """The documents of one domain and split: dicts with `sha256` and `text`."""
        path = self.path / "text" / f"{column_name(domain)}.{split}.jsonl"
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)

    def domain_info(self, domain: str) -> dict:
        for d in self.manifest["domains"]:
            if d["name"] == domain:
                return d
        raise MixlawInputError(f"unknown domain {domain!r}; the corpus has {self.domains}")

    def token_counts(self, split: str = "train") -> dict[str, int]:
        """Tokens per domain in a split: the availability numbers for mixture design and optimization."""
        return {d["name"]: int(d["tokens"][split]) for d in self.manifest["domains"]}

    def summary(self) -> str:
        lines = [
            f"corpus {self.manifest['name']} ({self.id}) at {self.path}, tokenizer {self.manifest['tokenizer']['id']}"
        ]
        for d in self.manifest["domains"]:
            lines.append(
                f"  {d['name']:<12} train {d['tokens']['train']:>10,} tokens / {d['bytes']['train']:>11,} bytes"
                f"   valid {d['tokens']['valid']:>8,} tokens   docs {d['documents']['train']:,}+{d['documents']['valid']:,}"
            )
        return "\n".join(lines)


def _versions() -> dict:
    def v(pkg: str) -> str | None:
        try:
            return metadata.version(pkg)
        except metadata.PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "packages": {p: v(p) for p in ("mixlaw", "numpy", "sympy", "tokenizers", "datasets")},
    }


def corpus_key(cfg: CorpusConfig) -> str:
    """Cache key: config + versions + local input file stats (hf sources are keyed by name/revision)."""
    base = Path(cfg.base_dir)
    files = []
    for d in cfg.domains:
        if d.source == "files":
            files.append(sources.file_fingerprint(sources.resolve_files(list(d.paths), base, d.name)))
        elif d.source == "hf" and os.path.exists(os.path.join(base, d.dataset or "")):
            p = Path(base, d.dataset or "")
            files.append(sources.file_fingerprint(sorted(x for x in p.rglob("*") if x.is_file())))
    tok = dict(cfg.tokenizer)
    if tok["kind"] == "file":
        tok["sha256"] = hashlib.sha256(Path(tok["path"]).read_bytes()).hexdigest()
    payload = {
        "format": FORMAT_VERSION,
        "domains": [asdict(d) for d in cfg.domains],
        "valid_fraction": cfg.valid_fraction,
        "tokenizer": tok,
        "versions": _versions(),
        "files": files,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def prepare_corpus(cfg: CorpusConfig, cache_dir: str | Path | None = None, rebuild: bool = False) -> Corpus:
    """Build (or reuse from the cache) the corpus described by `cfg`; returns the prepared `Corpus`."""
    root = Path(cache_dir) if cache_dir else cache_root()
    key = corpus_key(cfg)
    target = root / "corpus" / f"{cfg.name}-{key}"
    with locked(root / "corpus" / f".{cfg.name}-{key}.lock"):
        if target.is_dir() and (target / "manifest.json").is_file() and not rebuild:
            return Corpus(target)
        if target.exists():
            shutil.rmtree(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{cfg.name}-{key}-", dir=root / "corpus"))
        try:
            _build(cfg, tmp, key, root)
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Corpus(target)


class _DomainDocs:
    def __init__(self) -> None:
        self.docs: dict[str, list[str]] = {s: [] for s in SPLITS}
        self.hashes: dict[str, list[str]] = {s: [] for s in SPLITS}
        self.dropped_duplicates = 0
        self.moved_to_valid = 0

    def add(self, text: str, h: str, split: str) -> None:
        self.docs[split].append(text)
        self.hashes[split].append(h)


def _collect(d: DomainConfig, cfg: CorpusConfig, seen: set[str], tokenizer: Tokenizer | None) -> _DomainDocs:
    """Read one domain's documents, dedup against `seen`, split by hash and apply the budgets."""
    out = _DomainDocs()
    nbytes = ntokens = ndocs = 0
    batch: list[tuple[str, str, str]] = []

    def flush() -> bool:
        nonlocal ntokens
        if tokenizer is None or not batch:
            for text, h, split in batch:
                out.add(text, h, split)
            batch.clear()
            return False
        encoded = tokenizer.encode_batch([t for t, _, _ in batch])
        for (text, h, split), ids in zip(batch, encoded, strict=True):
            if ntokens + len(ids) + 1 > (d.max_tokens or 0):
                batch.clear()
                return True
            ntokens += len(ids) + 1
            out.add(text, h, split)
        batch.clear()
        return False

    for text in _chunked(iter_domain_documents(d, Path(cfg.base_dir)), d.max_doc_bytes):
        if not text.strip():
            continue
        h = doc_hash(text)
        if h in seen:
            out.dropped_duplicates += 1
            continue
        size = len(text.encode("utf-8"))
        if d.max_bytes is not None and nbytes + size > d.max_bytes:
            if nbytes == 0:  # always keep at least one document, truncated at a line break
                text = text.encode("utf-8")[: d.max_bytes].decode("utf-8", "ignore").rsplit("\n", 1)[0] + "\n"
                h, size = doc_hash(text), len(text.encode("utf-8"))
            else:
                break
        seen.add(h)
        nbytes += size
        ndocs += 1
        batch.append((text, h, "valid" if is_valid_doc(h, cfg.valid_fraction) else "train"))
        if len(batch) >= 64 and flush():
            break
        if d.max_docs is not None and ndocs >= d.max_docs:
            break
    flush()
    return out


def _chunked(docs: Iterator[str], limit: int | None) -> Iterator[str]:
    for text in docs:
        yield from chunk_document(text.replace("\r\n", "\n"), limit)


def _ensure_valid(dd: _DomainDocs, name: str) -> None:
    """Fallback so every domain has validation data: move the train document with the smallest hash."""
    if dd.docs["valid"] or len(dd.docs["train"]) < 2:
        return
    i = min(range(len(dd.hashes["train"])), key=lambda j: dd.hashes["train"][j])
    dd.add(dd.docs["train"].pop(i), dd.hashes["train"].pop(i), "valid")
    dd.moved_to_valid = 1
    log.info("corpus: domain %s had no validation document by hash; moved one", name)


def _train_sample(docs: list[str], budget: int) -> Iterator[str]:
    used = 0
    for t in docs:
        if used >= budget:
            return
        piece = t if used + len(t) <= budget else t[: budget - used]
        used += len(piece)
        yield piece


def _build(cfg: CorpusConfig, out: Path, key: str, root: Path) -> None:
    t0 = time.time()
    seen: set[str] = set()
    collected: dict[str, _DomainDocs] = {}
    token_budgeted = [d for d in cfg.domains if d.max_tokens is not None]
    for d in cfg.domains:
        if d.max_tokens is None:
            log.info("corpus: reading domain %s (%s)", d.name, d.source)
            collected[d.name] = _collect(d, cfg, seen, None)

    # Tokenizer, trained on the training split with a fixed per-domain byte budget.
    tok_spec = cfg.tokenizer
    tokenizer: Tokenizer
    if tok_spec["kind"] == "bytes":
        tokenizer = ByteTokenizer()
    elif tok_spec["kind"] == "file":
        shutil.copyfile(tok_spec["path"], out / "tokenizer.json")
        tokenizer = BPETokenizer(out / "tokenizer.json")
    else:
        budget = int(tok_spec["sample_bytes"])
        samples: dict[str, list[str]] = {}
        for d in cfg.domains:
            if d.name in collected:
                samples[d.name] = list(_train_sample(collected[d.name].docs["train"], budget))
            else:  # budget-by-tokens domains: the prefix of their stream that falls in the training split
                pre = _collect(
                    DomainConfig(**{**asdict(d), "max_tokens": None, "max_bytes": budget}),
                    cfg,
                    set(seen),
                    None,
                )
                samples[d.name] = pre.docs["train"]
        sample_hash = hashlib.sha256()
        for name in sorted(samples):
            for t in samples[name]:
                sample_hash.update(doc_hash(t).encode())
        tkey = hashlib.sha256(
            f"{sample_hash.hexdigest()}-{tok_spec['vocab_size']}-{FORMAT_VERSION}".encode()
        ).hexdigest()[:16]
        cached = root / "tokenizers" / tkey / "tokenizer.json"
        with locked(root / "tokenizers" / f".{tkey}.lock"):
            if not cached.is_file():
                log.info("corpus: training a byte-level BPE tokenizer (vocab %d)", tok_spec["vocab_size"])
                train_bpe(
                    (t for name in sorted(samples) for t in samples[name]), tok_spec["vocab_size"], cached
                )
        shutil.copyfile(cached, out / "tokenizer.json")
        tokenizer = BPETokenizer(out / "tokenizer.json")

    for d in token_budgeted:
        log.info("corpus: reading domain %s (%s, %d tokens)", d.name, d.source, d.max_tokens)
        collected[d.name] = _collect(d, cfg, seen, tokenizer)

    (out / "tokens").mkdir()
    (out / "text").mkdir()
    dtype = np.uint16 if tokenizer.vocab_size <= 65535 else np.uint32
    domains_meta = []
    for d in cfg.domains:
        dd = collected[d.name]
        _ensure_valid(dd, d.name)
        meta: dict = {
            "name": d.name,
            "column": column_name(d.name),
            "source": {k: v for k, v in asdict(d).items() if v not in (None, (), "") and k != "name"},
            "documents": {},
            "bytes": {},
            "tokens": {},
            "sha256": {},
            "duplicates_dropped": dd.dropped_duplicates,
            "moved_to_valid": dd.moved_to_valid,
        }
        for split in SPLITS:
            docs = dd.docs[split]
            ids = tokenizer.encode_batch(docs) if docs else []
            parts = []
            for arr in ids:
                parts.append(arr)
                parts.append(np.array([tokenizer.eos_id], dtype=np.int64))
            arr = np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
            np.save(out / "tokens" / f"{column_name(d.name)}.{split}.npy", arr, allow_pickle=False)
            with open(out / "text" / f"{column_name(d.name)}.{split}.jsonl", "w", encoding="utf-8") as fh:
                for t, h in zip(docs, dd.hashes[split], strict=True):
                    fh.write(json.dumps({"sha256": h, "text": t}, ensure_ascii=False) + "\n")
            content = hashlib.sha256()
            for t in docs:
                content.update(t.encode("utf-8"))
                content.update(b"\x00")
            meta["documents"][split] = len(docs)
            meta["bytes"][split] = sum(len(t.encode("utf-8")) for t in docs)
            meta["tokens"][split] = int(arr.size)
            meta["sha256"][split] = content.hexdigest()
        if meta["tokens"]["valid"] == 0:
            log.warning(
                "corpus: domain %s has no validation documents (raise valid_fraction or the budget)", d.name
            )
        domains_meta.append(meta)

    tok_desc = tokenizer.describe()
    tok_desc.pop("path", None)
    manifest = {
        "format": FORMAT_VERSION,
        "name": cfg.name,
        "key": key,
        "created_with": _versions(),
        "platform": sys.platform,
        "split": {
            "valid_fraction": cfg.valid_fraction,
            "rule": "validation iff int(sha256(document utf-8)[:8], 16) / 16**8 < valid_fraction; documents "
            "longer than max_doc_bytes are first cut at paragraph boundaries; a domain left without validation "
            "documents gets its train document with the smallest hash",
            "dedup": "exact duplicates (sha256 of the text) dropped within and across domains; earlier domain wins",
        },
        "tokenizer": tok_desc,
        "domains": domains_meta,
        "build_seconds": round(time.time() - t0, 2),
    }
    content_id = hashlib.sha256(
        json.dumps(
            {"tokenizer": tok_desc["id"], "domains": [(m["name"], m["sha256"]) for m in domains_meta]},
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    manifest["id"] = content_id
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


# --------------------------------------------------------------------------------------------- demo corpus

DEMO_DOMAINS = ("code", "docs", "math-prose", "math")


def demo_corpus_config(
    max_bytes: int = 3_000_000,
    math_tokens: int = 750_000,
    tokenizer: str | dict = "bpe",
    valid_fraction: float = 0.05,
    vocab_size: int = 2048,
) -> CorpusConfig:
    """The embedded demo corpus: four disjoint domains that need no network.

    code (stdlib source without docstrings/comments), docs (stdlib docstrings and comments + the language
    reference in pydoc_data.topics), math-prose (sympy docstrings), math (generated problems, a token budget)."""
    tok: object = tokenizer
    if tokenizer == "bpe":
        tok = {"kind": "bpe", "vocab_size": vocab_size, "sample_bytes": min(1_000_000, max_bytes)}
    raw = {
        "name": "demo",
        "valid_fraction": valid_fraction,
        "tokenizer": tok,
        "domains": [
            {"name": "code", "source": "stdlib-code", "max_bytes": max_bytes},
            {"name": "docs", "source": "stdlib-docs", "max_bytes": max_bytes},
            {"name": "math-prose", "source": "sympy-docs", "max_bytes": max_bytes},
            {"name": "math", "source": "math-generator", "max_tokens": math_tokens, "seed": 0},
        ],
    }
    return parse_corpus_config(raw, "demo corpus")
