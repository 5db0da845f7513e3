"""Where llama-ort keeps what it makes unasked: one folder per user, whatever the current directory.

The home is $LLAMA_ORT_HOME where set; else the platform's cache folder, as Hugging Face's is:
$XDG_CACHE_HOME/llama-ort (~/.cache/llama-ort) on Linux, ~/Library/Caches/llama-ort on macOS,
%LOCALAPPDATA%\\llama-ort on Windows. Under it: models/ (built model folders, the default model's included),
cache/ (the pass cache), checkpoints/ (downloads) and bench/ (the benchmark's builds). The commands' flags
(--output, --cache-dir, --model, --dest, --workdir) override each.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HOME_VARIABLE = "LLAMA_ORT_HOME"
NAME = "llama-ort"


def home() -> Path:
    """The folder every default location is under (not created here: whoever writes there does)."""
    if os.environ.get(HOME_VARIABLE):
        return Path(os.environ[HOME_VARIABLE]).expanduser().absolute()
    return platform_cache_root() / NAME


def platform_cache_root() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    return Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores a relative path


def models_dir() -> Path:
    """Built model folders: `llama-ort optimize`'s default output, where the other commands find the default model."""
    return home() / "models"


def cache_dir() -> Path:
    """The pass cache (`llama-ort optimize --cache-dir`)."""
    return home() / "cache"


def checkpoints_dir() -> Path:
    """Downloaded checkpoints (`llama-ort download --dest`)."""
    return home() / "checkpoints"


def bench_dir() -> Path:
    """The benchmark's builds and converted checkpoints, reused by later runs (`llama-ort bench --workdir`)."""
    return home() / "bench"


def describe() -> str:
    """Each folder, with the flag that overrides it (`llama-ort info` prints it)."""
    source = (f"${HOME_VARIABLE}" if os.environ.get(HOME_VARIABLE)
              else f"the platform's cache folder; set ${HOME_VARIABLE} to move it")
    rows = [("built models", models_dir(), "optimize --output; the default model is built here"),
            ("pass cache", cache_dir(), "optimize --cache-dir"),
            ("downloads", checkpoints_dir(), "download --dest"),
            ("benchmark builds", bench_dir(), "bench --workdir")]
    width = max(len(what) for what, _, _ in rows) + 1
    return "\n".join([f"llama-ort's folders: {home()} ({source})"]
                     + [f"  {what + ':':<{width}} {folder}  ({flag})" for what, folder, flag in rows])
