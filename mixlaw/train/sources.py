"""Document sources: local files, Hugging Face datasets, and the built-in no-network sources.

Every source is an iterator of documents (str) in a fixed, deterministic order. Built-in sources:

- `stdlib-code`: Python standard-library modules with docstrings and comments removed (one document per file).
- `stdlib-docs`: the docstrings and comments of the same files, plus the language reference sections shipped in
  `pydoc_data.topics` (one document per file / per section).
- `sympy-docs`: docstrings of the installed sympy package (one document per file; sympy ships with PyTorch).
- `math-generator`: seeded arithmetic and algebra problems in the style of the DeepMind mathematics dataset.

Files are visited in an order given by a hash of their relative path, so a byte budget takes an even sample
of the library rather than its alphabetically first modules.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import importlib.util
import inspect
import io
import json
import math
import os
import random
import re
import sysconfig
import tokenize
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

from mixlaw.errors import MixlawInputError

BUILTIN_SOURCES = ("stdlib-code", "stdlib-docs", "sympy-docs", "math-generator")
SOURCE_KINDS = (*BUILTIN_SOURCES, "files", "hf")
_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "benchmarks"}


# --------------------------------------------------------------------------------------------- helpers


def _hashed_order(paths: list[Path], root: Path) -> list[Path]:
    return sorted(paths, key=lambda p: hashlib.sha256(p.relative_to(root).as_posix().encode()).hexdigest())


def _python_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        out.extend(Path(dirpath) / f for f in filenames if f.endswith(".py"))
    return _hashed_order(out, root)


def _read_source(path: Path) -> str | None:
    try:
        with tokenize.open(path) as fh:
            return fh.read()
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


def _docstring_nodes(tree: ast.AST) -> list[ast.Expr]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                out.append(body[0])
    return out


def _parents_single(tree: ast.AST) -> set[int]:
    """ids of docstring Expr nodes that are the only statement of their body."""
    single = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and len(node.body) == 1:
            single.add(id(node.body[0]))
    return single


def strip_code(src: str) -> str | None:
    """Source with docstrings and comments removed (a lone docstring becomes `pass`); None if unparsable."""
    try:
        tree = ast.parse(src)
        toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
    except (SyntaxError, ValueError, tokenize.TokenError, RecursionError, MemoryError):
        return None
    lines = src.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))

    def offset(row: int, col_bytes: int | None, col_chars: int | None = None) -> int:
        line = lines[row - 1] if row - 1 < len(lines) else ""
        col = (
            col_chars
            if col_chars is not None
            else len(line.encode("utf-8")[:col_bytes].decode("utf-8", "ignore"))
        )
        return starts[row - 1] + col

    edits: list[tuple[int, int, str]] = []
    single = _parents_single(tree)
    for expr in _docstring_nodes(tree):
        a = offset(expr.lineno, expr.col_offset)
        b = offset(expr.end_lineno or expr.lineno, expr.end_col_offset)
        edits.append((a, b, "pass\x00" if id(expr) in single else "\x00"))
    for tok in toks:
        if tok.type == tokenize.COMMENT:
            a = offset(tok.start[0], None, tok.start[1])
            edits.append((a, a + len(tok.string), "\x00"))
    text = src
    for a, b, rep in sorted(edits, reverse=True):
        text = text[:a] + rep + text[b:]
    out_lines = []
    for line in text.splitlines():
        if "\x00" in line:
            line = line.replace("\x00", "").rstrip()
            if not line.strip():
                continue
        out_lines.append(line.rstrip())
    result = re.sub(r"\n{3,}", "\n\n", "\n".join(out_lines)).strip("\n") + "\n"
    try:
        ast.parse(result)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    return result if result.strip() else None


def docs_of(src: str, with_comments: bool = True, min_comment_chars: int = 20) -> str | None:
    """Docstrings (cleaned) and comment blocks of a module, joined by blank lines; None if there are none."""
    try:
        tree = ast.parse(src)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    parts: list[tuple[int, str]] = []
    for expr in _docstring_nodes(tree):
        doc = inspect.cleandoc(expr.value.value).strip()  # type: ignore[attr-defined]
        if doc:
            parts.append((expr.lineno, doc))
    if with_comments:
        try:
            toks = list(tokenize.generate_tokens(io.StringIO(src).readline))
        except (tokenize.TokenError, SyntaxError):
            toks = []
        block: list[str] = []
        block_line = 0
        last_row = -2
        for tok in toks:
            if tok.type != tokenize.COMMENT:
                continue
            row = tok.start[0]
            text = tok.string.lstrip("#")
            text = text[1:] if text.startswith(" ") else text
            if row == 1 and tok.string.startswith("#!") or "coding" in tok.string and row <= 2:
                continue
            if row != last_row + 1 and block:
                joined = "\n".join(block).strip()
                if len(joined) >= min_comment_chars:
                    parts.append((block_line, joined))
                block = []
            if not block:
                block_line = row
            block.append(text.rstrip())
            last_row = row
        joined = "\n".join(block).strip()
        if len(joined) >= min_comment_chars:
            parts.append((block_line, joined))
    parts.sort(key=lambda t: t[0])
    text = "\n\n".join(p for _, p in parts)
    return text + "\n" if text else None


def stdlib_root() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _package_root(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)  # locates without importing the package
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


# --------------------------------------------------------------------------------------------- built-ins


def iter_stdlib_code() -> Iterator[str]:
    for path in _python_files(stdlib_root()):
        src = _read_source(path)
        if src:
            code = strip_code(src)
            if code:
                yield code


def iter_stdlib_docs() -> Iterator[str]:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        topics = {}
    for key in sorted(topics):
        text = topics[key].strip()
        if text:
            yield text + "\n"
    for path in _python_files(stdlib_root()):
        src = _read_source(path)
        if src:
            doc = docs_of(src)
            if doc:
                yield doc


def iter_sympy_docs() -> Iterator[str]:
    root = _package_root("sympy")
    if root is None:
        raise MixlawInputError("source sympy-docs needs the sympy package (it is installed with PyTorch)")
    for path in _python_files(root):
        src = _read_source(path)
        if src:
            doc = docs_of(src, with_comments=False)
            if doc:
                yield doc


def iter_math_problems(seed: int = 0, problems_per_doc: int = 32) -> Iterator[str]:
    """Endless stream of documents of generated problems; document i depends only on (seed, i)."""
    i = 0
    while True:
        rng = random.Random(f"mixlaw-math-{seed}-{i}")
        lines = []
        for _ in range(problems_per_doc):
            q, a = _GENERATORS[rng.randrange(len(_GENERATORS))](rng)
            lines.append(f"{q}\n{a}\n")
        yield "".join(lines)
        i += 1


def _poly(rng: random.Random, var: str, degree: int) -> tuple[list[int], str]:
    coeffs = [rng.randint(-9, 9) for _ in range(degree + 1)]
    if coeffs[-1] == 0:
        coeffs[-1] = rng.choice([-3, -2, -1, 1, 2, 3])
    return coeffs, _poly_str(coeffs, var)


def _poly_str(coeffs: list[int], var: str) -> str:
    terms = []
    for power in range(len(coeffs) - 1, -1, -1):
        c = coeffs[power]
        if c == 0:
            continue
        mag = abs(c)
        body = (
            str(mag)
            if power == 0
            else (("" if mag == 1 else f"{mag}*") + var + (f"**{power}" if power > 1 else ""))
        )
        sign = "-" if c < 0 else "+"
        terms.append((sign, body))
    if not terms:
        return "0"
    first_sign, first = terms[0]
    out = ("-" if first_sign == "-" else "") + first
    for sign, body in terms[1:]:
        out += f" {sign} {body}"
    return out


def _frac(x: Fraction) -> str:
    return str(x.numerator) if x.denominator == 1 else f"{x.numerator}/{x.denominator}"


def _g_add(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(-9999, 9999), rng.randint(-9999, 9999)
    op = rng.choice(["+", "-"])
    q = rng.choice(["What is {a} {op} {b}?", "Calculate {a} {op} {b}.", "Sum {a} and {b}."])
    if q.startswith("Sum"):
        return q.format(a=a, b=b), str(a + b)
    return q.format(a=a, op=op, b=f"({b})" if b < 0 else b), str(a + b if op == "+" else a - b)


def _g_mul(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(-999, 999), rng.randint(-99, 99) or 7
    if rng.random() < 0.5:
        return f"What is {a} times {b}?", str(a * b)
    return f"Divide {a * b} by {b}.", str(a)


def _g_mixed(rng: random.Random) -> tuple[str, str]:
    a, b, c, d = (rng.randint(-20, 20) for _ in range(4))
    expr = f"({a} - {b}) * {c} + {d}" if rng.random() < 0.5 else f"{a} + {b} * ({c} - {d})"
    return f"Evaluate {expr}.", str(eval(expr, {"__builtins__": {}}))  # noqa: S307 - our own digits only


def _g_linear_1d(rng: random.Random) -> tuple[str, str]:
    var = rng.choice("abcdfghjkmnpqrstuvwxyz")
    x = rng.randint(-30, 30)
    a = rng.choice([i for i in range(-12, 13) if i])
    b = rng.randint(-99, 99)
    c = a * x + b
    return f"Solve {a}*{var} + {b} = {c} for {var}.".replace("+ -", "- "), str(x)


def _g_linear_2d(rng: random.Random) -> tuple[str, str]:
    u, v = rng.sample("abcdfghjkmnpqrstuvwxyz", 2)
    x, y = rng.randint(-15, 15), rng.randint(-15, 15)
    while True:
        a, b, c, d = (rng.choice([i for i in range(-9, 10) if i]) for _ in range(4))
        if a * d - b * c:
            break
    e1 = f"{a}*{u} + {b}*{v} = {a * x + b * y}".replace("+ -", "- ")
    e2 = f"{c}*{u} + {d}*{v} = {c * x + d * y}".replace("+ -", "- ")
    return f"Solve {e1}, {e2} for {u}.", str(x)


def _g_poly_eval(rng: random.Random) -> tuple[str, str]:
    name, var = rng.choice("fghkpqr"), rng.choice("xyztnm")
    coeffs, s = _poly(rng, var, rng.randint(1, 3))
    at = rng.randint(-6, 6)
    return f"Let {name}({var}) = {s}. What is {name}({at})?", str(
        sum(c * at**i for i, c in enumerate(coeffs))
    )


def _g_derivative(rng: random.Random) -> tuple[str, str]:
    var = rng.choice("xyztnmabc")
    coeffs, s = _poly(rng, var, rng.randint(2, 5))
    deriv = [i * c for i, c in enumerate(coeffs)][1:]
    return f"Differentiate {s} with respect to {var}.", _poly_str(deriv, var)


def _g_base(rng: random.Random) -> tuple[str, str]:
    n, base = rng.randint(2, 5000), rng.choice([2, 3, 4, 5, 6, 7, 8, 9, 16])
    digits, m = "", n
    while m:
        digits = "0123456789abcdef"[m % base] + digits
        m //= base
    if rng.random() < 0.5:
        return f"What is {n} (base 10) in base {base}?", digits
    return f"Convert {digits} (base {base}) to base 10.", str(n)


def _g_gcd(rng: random.Random) -> tuple[str, str]:
    g = rng.randint(1, 60)
    a, b = g * rng.randint(1, 40), g * rng.randint(1, 40)
    if rng.random() < 0.5:
        return f"What is the greatest common divisor of {a} and {b}?", str(math.gcd(a, b))
    return f"What is the lowest common multiple of {a} and {b}?", str(a * b // math.gcd(a, b))


def _g_prime(rng: random.Random) -> tuple[str, str]:
    n = rng.randint(2, 20000)
    is_prime = n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))
    return f"Is {n} a prime number?", "True" if is_prime else "False"


def _g_fraction(rng: random.Random) -> tuple[str, str]:
    a = Fraction(rng.randint(-20, 20), rng.randint(1, 12))
    b = Fraction(rng.randint(-20, 20), rng.randint(1, 12))
    op = rng.choice(["+", "-", "*"])
    r = a + b if op == "+" else a - b if op == "-" else a * b
    return f"Calculate ({_frac(a)}) {op} ({_frac(b)}).", _frac(r)


def _g_compare(rng: random.Random) -> tuple[str, str]:
    a = Fraction(rng.randint(-50, 50), rng.randint(1, 9))
    b = Fraction(rng.randint(-500, 500), 100)
    if a == b:
        b += Fraction(1, 100)
    return f"Which is bigger: {_frac(a)} or {float(b):g}?", _frac(a) if a > b else f"{float(b):g}"


def _g_sequence(rng: random.Random) -> tuple[str, str]:
    start, step = rng.randint(-50, 50), rng.choice([i for i in range(-15, 16) if i])
    if rng.random() < 0.7:
        seq = [start + step * i for i in range(5)]
        return f"What is next in {', '.join(map(str, seq[:4]))}?", str(seq[4])
    quad = rng.randint(1, 4)
    seq = [start + step * i + quad * i * i for i in range(5)]
    return f"What comes next: {', '.join(map(str, seq[:4]))}?", str(seq[4])


def _g_round(rng: random.Random) -> tuple[str, str]:
    x = rng.randint(-(10**6), 10**6) / 10 ** rng.randint(2, 5)
    dp = rng.randint(0, 2)
    return f"Round {x} to {dp} decimal places.", f"{round(x, dp):.{dp}f}"


_GENERATORS = [
    _g_add,
    _g_mul,
    _g_mixed,
    _g_linear_1d,
    _g_linear_2d,
    _g_poly_eval,
    _g_derivative,
    _g_base,
    _g_gcd,
    _g_prime,
    _g_fraction,
    _g_compare,
    _g_sequence,
    _g_round,
]


# --------------------------------------------------------------------------------------------- user sources


def resolve_files(patterns: list[str], base: Path, domain: str) -> list[Path]:
    """Expand globs (relative to `base`) into a sorted list of files; errors name the pattern."""
    files: list[Path] = []
    for pat in patterns:
        full = pat if os.path.isabs(pat) else str(base / pat)
        matches = sorted(Path(m) for m in glob.glob(os.path.expanduser(full), recursive=True))
        matches = [m for m in matches if m.is_file()]
        if not matches:
            raise MixlawInputError(f"domain {domain!r}: no files match {pat!r}")
        for m in matches:
            if m.suffix.lower() not in (".txt", ".jsonl", ".parquet", ".md", ".text"):
                raise MixlawInputError(
                    f"domain {domain!r}: {m}: unsupported file type {m.suffix!r} (use .txt, .jsonl or .parquet)"
                )
        files.extend(matches)
    return files


def iter_files(
    files: list[Path], text_field: str, domain: str, doc_separator: str | None = None
) -> Iterator[str]:
    """Documents of local files: a .txt file is one document (or is split on `doc_separator`),
    a .jsonl line or a .parquet row is one document (its `text_field`)."""
    for path in files:
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            with open(path, encoding="utf-8", errors="replace") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError as exc:
                        raise MixlawInputError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from None
                    if not isinstance(row, dict) or text_field not in row:
                        raise MixlawInputError(f"{path}:{lineno}: no text field {text_field!r}")
                    if isinstance(row[text_field], str) and row[text_field].strip():
                        yield row[text_field]
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            try:
                pf = pq.ParquetFile(path)
            except Exception as exc:  # pyarrow raises several types
                raise MixlawInputError(f"{path}: cannot read Parquet: {exc}") from None
            if text_field not in pf.schema_arrow.names:
                raise MixlawInputError(
                    f"{path}: no text column {text_field!r} (columns: {pf.schema_arrow.names})"
                )
            for batch in pf.iter_batches(columns=[text_field], batch_size=1024):
                for value in batch.column(0).to_pylist():
                    if isinstance(value, str) and value.strip():
                        yield value
        else:
            text = path.read_text(encoding="utf-8", errors="replace")
            pieces = text.split(doc_separator) if doc_separator else [text]
            for piece in pieces:
                if piece.strip():
                    yield piece


def iter_hf(
    dataset: str, config: str | None, split: str, text_field: str, domain: str, revision: str | None = None
) -> Iterator[str]:
    """Documents of a Hugging Face dataset, streamed (`datasets.load_dataset(..., streaming=True)`).

    `dataset` may be a hub name (needs the network at build time) or a local directory / data files."""
    try:
        import datasets
    except ImportError:
        raise MixlawInputError(
            f"domain {domain!r}: source hf needs the `datasets` package (pip install datasets)"
        ) from None
    kwargs = {"split": split, "streaming": True}
    if revision:
        kwargs["revision"] = revision
    try:
        ds = datasets.load_dataset(dataset, config, **kwargs)
    except Exception as exc:  # network, missing dataset, bad config: all one-line errors
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise MixlawInputError(
            f"domain {domain!r}: cannot load Hugging Face dataset {dataset!r}: {msg}"
        ) from None
    for row in ds:
        if text_field not in row:
            raise MixlawInputError(f"domain {domain!r}: dataset {dataset!r} has no field {text_field!r}")
        value = row[text_field]
        if isinstance(value, str) and value.strip():
            yield value


def file_fingerprint(files: list[Path]) -> list[list]:
    """(path, size, mtime_ns) of each file: a cheap change detector for the corpus cache key."""
    out = []
    for f in files:
        st = f.stat()
        out.append([str(f.resolve()), st.st_size, st.st_mtime_ns])
    return out
