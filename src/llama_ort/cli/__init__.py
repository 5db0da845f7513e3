"""`llama-ort`: argument parsing, then one call into the library per command.

Each command lives in its own module of this package with `register(subparsers)`, which adds its parser
and sets `run(args) -> int`. Errors users can fix (LlamaOrtError, and OSErrors about a path) print one line
and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from .. import __version__
from ..errors import LlamaOrtError

COMMANDS = ("info", "download", "optimize", "verify", "eval", "generate", "chat", "serve", "make-random", "bench", "bench-serve")


class Parser(argparse.ArgumentParser):
    """Usage errors as one line (with where to find help) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="llama-ort",
        description="Turn Llama-family checkpoints into ONNX models optimized for ONNX Runtime, and run them.",
    )
    parser.add_argument("--version", action="version", version=f"llama-ort {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f".{name.replace('-', '_')}", __name__).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return report_errors(lambda: args.run(args))


def report_errors(run: Callable[[], int | None]) -> int:
    """Run a command: errors users can fix become one line on stderr and exit code 2."""
    try:
        return run() or 0
    except LlamaOrtError as e:
        print(f"llama-ort: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if e.filename is None:  # not about a path the user gave: a bug, or worse; keep the traceback
            raise
        # A path that cannot be read or written (a file where a folder goes, no permission, a full disk ...)
        print(f"llama-ort: error: {e.filename}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("llama-ort: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
