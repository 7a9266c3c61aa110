"""Entry point of the `mixlaw` command: builds the parser from the command modules and maps errors to exit codes.

Exit codes: 0 success, 2 bad input (one line on stderr naming the file, column or value), 1 internal error.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from mixlaw.errors import MixlawInputError
from mixlaw.version import __version__

# One module per command group; each exposes `register(subparsers)`.
COMMAND_MODULES = [
    "mixlaw.cli.core",
    "mixlaw.cli.pipeline",
    "mixlaw.cli.peers",
    "mixlaw.cli.report",
    "mixlaw.cli.train",
    "mixlaw.cli.run",
    "mixlaw.cli.continual",
    "mixlaw.cli.confirm",
]

EPILOG = """exit codes: 0 ok, 2 bad input (one-line message), 1 internal error (please report it).
Run `mixlaw COMMAND --help` for examples."""


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line naming the command and the flag (no usage dump)."""

    def error(self, message: str):  # type: ignore[override]
        command = self.prog.removeprefix("mixlaw").strip()
        where = f"{command}: " if command else ""
        self.exit(2, f"mixlaw: error: {where}{message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from mixlaw.cli.common import defer_imports

    defer_imports()  # pandas loads on first use: --help, laws and export start without it
    parser = OneLineParser(
        prog="mixlaw",
        description="Data mixing laws: predict and optimize a pretraining data mixture from small proxy runs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mixlaw {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    verbose = getattr(args, "verbose", False)
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(
        level=logging.DEBUG if verbose else (logging.ERROR if quiet else logging.WARNING),
        format="mixlaw: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    logging.captureWarnings(True)
    try:
        return int(args.func(args) or 0)
    except MixlawInputError as exc:
        print(f"mixlaw: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mixlaw: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line plus a hint, never a raw traceback
        if verbose:
            traceback.print_exc()
        print(
            f"mixlaw: internal error: {type(exc).__name__}: {exc} "
            "(rerun with --verbose for the traceback and please report it)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
