"""A content-addressed cache of pass results: one folder per entry, written atomically, verified on reuse.

An entry's key is a hash of the pass's name and version, its options and its input's key, so a change
to any of them misses. Each entry records the sha256 of its files; a corrupted entry fails that check
and is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("llama_ort.pipeline")

ENTRY_FILE = "entry.json"


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, pass_name: str, key: str) -> Path:
        return self.root / pass_name / key

    def lookup(self, pass_name: str, key: str) -> Path | None:
        """The entry's folder if it exists and every file matches its recorded hash; else None."""
        folder = self.path(pass_name, key)
        record = folder / ENTRY_FILE
        if not record.exists():
            return None
        try:
            files = json.loads(record.read_text())["files"]
            intact = all((folder / name).stat().st_size == size and file_digest(folder / name) == digest
                         for name, (size, digest) in files.items())
        except (OSError, ValueError, KeyError):
            intact = False
        if not intact:
            log.warning("%s: cache entry %s is corrupt; rebuilding it", pass_name, folder)
            shutil.rmtree(folder, ignore_errors=True)
            return None
        return folder

    def store(self, pass_name: str, key: str, produce: Callable[[Path], None]) -> Path:
        """Run `produce(folder)` into a temporary folder, record its files' hashes, then rename it into place."""
        self._remove_abandoned_scratch()
        scratch = self.root / "tmp" / f"{pass_name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        scratch.mkdir(parents=True)
        try:
            produce(scratch)
            files = {str(p.relative_to(scratch)): (p.stat().st_size, file_digest(p))
                     for p in sorted(scratch.rglob("*")) if p.is_file()}
            (scratch / ENTRY_FILE).write_text(json.dumps({"pass": pass_name, "files": files}, indent=1))
            final = self.path(pass_name, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(final, ignore_errors=True)
            os.replace(scratch, final)
            return final
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _remove_abandoned_scratch(self) -> None:
        """Scratch folders of processes that are gone (killed mid-pass), which nothing else would remove."""
        for folder in (self.root / "tmp").glob("*-*-*"):
            pid = folder.name.split("-")[-2]
            if pid.isdigit() and not process_alive(int(pid)):
                log.info("cache: removing %s, left by a run that ended before it was done", folder)
                shutil.rmtree(folder, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
