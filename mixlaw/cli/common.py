"""Flags shared by every command that reads a runs table (pandas is imported only when a table is read)."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import math
import sys
import types
from collections.abc import Callable
from typing import TYPE_CHECKING

from mixlaw.errors import MixlawInputError
from mixlaw.outputs import command_line, portable_path  # noqa: F401 - re-exported for the commands

if TYPE_CHECKING:
    from mixlaw.fitted import FitData
    from mixlaw.runs import RunsTable


# Loaded on first use instead of at start-up, so `mixlaw --help`, `laws` and `export` do not pay for them.
DEFERRED_MODULES = ("pandas",)


class _Deferred(types.ModuleType):
    """Stands in for a module until one of its attributes is used, then imports it for real.

    Registered in sys.modules (`defer_imports`), `import pandas as pd` at the top of a module binds this
    stand-in and costs nothing; the first `pd.X` (or `from pandas import X`, or a submodule import, which asks
    for `__path__`) imports pandas. (The standard library's `importlib.util.LazyLoader` does not do here: on
    Python 3.11 the import statement itself reads the lazy module's `__spec__`, which loads it.)"""

    def __getattr__(self, name: str):
        module = self.__dict__.get("_module")
        if module is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            module = importlib.import_module(self.__name__)
            self.__dict__["_module"] = module
        return getattr(module, name)


def lazy_import(name: str) -> types.ModuleType:
    """The module `name` if imported, else a stand-in that imports it on first attribute access."""
    return sys.modules.get(name) or _Deferred(name)


api = lazy_import("mixlaw.api")  # the front door; loaded when a command runs, not for --help


def defer_imports(names: tuple[str, ...] = DEFERRED_MODULES) -> None:
    """Replace each installed, not yet imported module in `names` by a stand-in (call before importing the
    command modules; a module that is already imported, or not installed, is left alone)."""
    for name in names:
        if name not in sys.modules and importlib.util.find_spec(name) is not None:
            sys.modules[name] = _Deferred(name)


# -- argparse `type=` functions: each CLI number checked for type, finiteness and range before any work -------
# A bad value is an argparse error: one line naming the command, the flag and the value, exit 2.


def number(
    gt: float | None = None, ge: float | None = None, lt: float | None = None, le: float | None = None
) -> Callable[[str], float]:
    """A finite float (`nan`, `inf` and overflowing literals such as `1e400` refused) within the bounds."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} must be a finite number")
        _check_bounds(text, value, gt, ge, lt, le)
        return value

    return parse


def integer(ge: int | None = None, le: int | None = None) -> Callable[[str], int]:
    """An integer (`3`, not `3.0` or `inf`) within the bounds."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        _check_bounds(text, value, None, ge, None, le)
        return value

    return parse


def _check_bounds(text: str, value: float, gt, ge, lt, le) -> None:
    for bound, ok, words in (
        (gt, lambda b: value > b, "> {:g}"),
        (ge, lambda b: value >= b, ">= {:g}"),
        (lt, lambda b: value < b, "< {:g}"),
        (le, lambda b: value <= b, "<= {:g}"),
    ):
        if bound is not None and not ok(bound):
            raise argparse.ArgumentTypeError(f"{text} must be {words.format(bound)}")


finite_float = number()
positive_float = number(gt=0)  # sizes, token counts, Huber delta, distances
nonnegative_float = number(ge=0)  # tolerances, strengths, checkpoint steps
positive_int = integer(ge=1)  # counts where 0 is meaningless (starts, mixtures, stages, workers)
nonnegative_int = integer(ge=0)  # counts where 0 means "none" (bootstrap refits), seeds
random_seed = nonnegative_int  # numpy seeds are >= 0
share = number(gt=0, lt=1)  # interval and confidence levels, open (0, 1)


def folds(text: str, words: tuple[str, ...] = ("loo",)) -> int | str:
    """`--cv`: a number of folds K >= 2, or one of `words` (loo; auto where the command has it)."""
    if text in words:
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected an integer K >= 2 or {' or '.join(words)}"
        ) from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"{text}: cross-validation needs at least 2 folds")
    return value


def add_output_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", "-q", action="store_true", help="only errors on stderr")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug output and tracebacks")


def add_runs_flags(parser: argparse.ArgumentParser, checkpoint: bool = True) -> None:
    """RUNS plus selection and aggregation flags."""
    parser.add_argument("runs", metavar="RUNS", help="runs table (.csv, .parquet or .jsonl)")
    group = parser.add_argument_group("selection")
    group.add_argument("--model", help="model label to use (e.g. 70M)")
    group.add_argument("--params", type=positive_float, help="model size by non-embedding parameter count")
    if checkpoint:
        group.add_argument("--step", type=nonnegative_float, help="checkpoint step")
        group.add_argument("--tokens", type=nonnegative_float, help="checkpoint by training tokens")
        group.add_argument(
            "--step-tol",
            type=nonnegative_float,
            default=0.0,
            help="take each run's nearest complete checkpoint within this distance (default 0: exact)",
        )
    group.add_argument(
        "--train-domains", type=_csv_list, help="comma list: runs that train only on these domains"
    )
    group.add_argument("--valid-domains", type=_csv_list, help="comma list of validation domains to use")
    group.add_argument("--metric", help="which metric when the table has a metric column")
    group.add_argument("--renormalize", action="store_true", help="rescale proportions that do not sum to 1")
    agg = parser.add_argument_group("aggregation")
    agg.add_argument(
        "--valid-weights",
        metavar="FILE|uniform",
        default=None,
        help="CSV with valid_domain,valid_weight[,group columns], or 'uniform' (the default)",
    )
    agg.add_argument(
        "--group", metavar="COLUMN", help="grouping column of the weights file: targets become groups"
    )


def _csv_list(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def load_table(args: argparse.Namespace) -> RunsTable:
    from mixlaw.runs import read_runs

    return read_runs(args.runs, renormalize=args.renormalize)


def prepare_from_args(args: argparse.Namespace, table: RunsTable | None = None) -> FitData:

    table = table or load_table(args)
    if args.model is not None and args.params is not None:
        raise MixlawInputError("give --model or --params, not both")
    return api.prepare_data(
        table,
        model=args.model,
        params=args.params,
        step=getattr(args, "step", None),
        tokens=getattr(args, "tokens", None),
        step_tol=getattr(args, "step_tol", 0.0),
        valid_weights=args.valid_weights,
        group=args.group,
        train_domains=args.train_domains,
        valid_domains=args.valid_domains,
        metric=args.metric,
    )


def status(args: argparse.Namespace, message: str) -> None:
    """Progress line on stderr (suppressed by --quiet)."""
    if not getattr(args, "quiet", False):
        print(f"mixlaw: {message}", file=sys.stderr, flush=True)
