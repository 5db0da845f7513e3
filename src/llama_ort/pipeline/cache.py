"""A content-addressed cache of pass results: one folder per entry, written atomically, read-only, and checked
against its recorded hashes as its bytes leave the cache.

An entry's key is a hash of the pass's name and version, its options and its input's key, so a change to any of
them misses. Each entry records the size and sha256 of its files. A lookup checks the sizes (a truncated entry is
rebuilt at once); the hashes are checked on the very bytes handed out, as they are copied into a model folder or
read, so a file that changed in the cache, even between the lookup and the copy, is never handed out.

Model folders get copies, never the cache's own files: a reflink (the filesystem shares the blocks copy-on-write:
Btrfs, XFS, bcachefs ...) where it can, else a plain copy. Either way an edit of a model folder never reaches the
cache, nor the other way round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import sys
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..errors import LlamaOrtError

log = logging.getLogger("llama_ort.pipeline")

ENTRY_FILE = "entry.json"
READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH  # 0o444
FICLONE = 0x40049409  # Linux's ioctl: make a file share another's blocks, copy-on-write
CHUNK_BYTES = 1 << 22


class CorruptEntry(LlamaOrtError):
    """A cached file whose bytes are not those recorded when its entry was stored."""

    def __init__(self, entry: Path, name: str):
        super().__init__(f"cache entry {entry} is corrupt: {name} does not match its recorded sha256")
        self.entry = entry


def cache_key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, pass_name: str, key: str) -> Path:
        return self.root / pass_name / key

    def lookup(self, pass_name: str, key: str) -> Path | None:
        """The entry's folder if it exists and every recorded file is there at its recorded size; else None (an
        entry that is not whole is removed). The hashes are checked when the files are taken out."""
        folder = self.path(pass_name, key)
        if not (folder / ENTRY_FILE).exists():
            return None
        try:
            whole = all((folder / name).stat().st_size == size for name, (size, _) in self.files(folder).items())
        except (OSError, ValueError, KeyError, TypeError):  # a damaged record
            whole = False
        if not whole:
            log.warning("%s: cache entry %s is corrupt (a damaged record, or a file missing or of another size); "
                        "rebuilding it", pass_name, folder)
            self.drop(folder)
            return None
        return folder

    def files(self, entry: Path) -> dict[str, tuple[int, str]]:
        """The entry's record: file name (relative to the entry) -> (size, sha256)."""
        return json.loads((entry / ENTRY_FILE).read_text())["files"]

    def copy_out(self, entry: Path, folder: Path) -> None:
        """Copy every file of `entry` into `folder`, failing with CorruptEntry where the bytes copied are not the
        ones recorded."""
        for name, (_, digest) in self.files(entry).items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if copy_hashed(entry / name, target) != digest:
                raise CorruptEntry(entry, name)

    def read_bytes(self, entry: Path, name: str) -> bytes:
        """One (small) file of `entry`, failing with CorruptEntry if it is not what was recorded."""
        data = (entry / name).read_bytes()
        _, digest = self.files(entry).get(name, (None, None))
        if hashlib.sha256(data).hexdigest() != digest:
            raise CorruptEntry(entry, name)
        return data

    def store(self, pass_name: str, key: str, produce: Callable[[Path], None]) -> Path:
        """Run `produce(folder)` into a temporary folder, record its files' hashes, make them read-only, then
        rename the folder into place."""
        self._remove_abandoned_scratch()
        scratch = self.root / "tmp" / f"{pass_name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        scratch.mkdir(parents=True)
        try:
            produce(scratch)
            files = {p.relative_to(scratch).as_posix(): (p.stat().st_size, file_digest(p))
                     for p in sorted(scratch.rglob("*")) if p.is_file()}
            (scratch / ENTRY_FILE).write_text(json.dumps({"pass": pass_name, "files": files}, indent=1))
            for path in scratch.rglob("*"):
                if path.is_file():
                    path.chmod(READ_ONLY)
            final = self.path(pass_name, key)
            final.parent.mkdir(parents=True, exist_ok=True)
            self.drop(final)
            os.replace(scratch, final)
            return final
        finally:
            remove_tree(scratch)

    def drop(self, entry: Path) -> None:
        remove_tree(entry)

    def _remove_abandoned_scratch(self) -> None:
        """Scratch folders of processes that are gone (killed mid-pass), which nothing else would remove."""
        for folder in (self.root / "tmp").glob("*-*-*"):
            pid = folder.name.split("-")[-2]
            if pid.isdigit() and not process_alive(int(pid)):
                log.info("cache: removing %s, left by a run that ended before it was done", folder)
                remove_tree(folder)

    def clear(self) -> None:
        remove_tree(self.root)


def copy_hashed(source: Path, target: Path) -> str:
    """Copy `source` to `target` and return the sha256 of the bytes `target` holds: hashed as they are written, or
    read back from a reflink."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        if reflink(src, dst):
            return file_digest(target)
        digest = hashlib.sha256()
        buffer = memoryview(bytearray(CHUNK_BYTES))
        # Each chunk is hashed on a thread while it is written (both let go of the GIL): a copy costs about the slower
        # of the two, not their sum (sha256 takes ~1.5 GB/s of one core).
        with ThreadPoolExecutor(1) as hasher:
            while size := src.readinto(buffer):
                chunk = buffer[:size]
                hashed = hasher.submit(digest.update, chunk)
                dst.write(chunk)
                hashed.result()
    return digest.hexdigest()


def reflink(src, dst) -> bool:
    """Whether `dst` now shares the blocks of `src` (open files): False where the filesystem or system cannot."""
    try:
        import fcntl  # not on Windows
        fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
    except (ImportError, OSError):
        return False
    return True


def remove_tree(folder: Path) -> None:
    """Remove `folder`, if it exists, read-only files and all (Windows refuses to delete a read-only file)."""
    def make_writable_and_retry(remove, path, _error) -> None:
        os.chmod(path, stat.S_IWRITE | stat.S_IREAD)
        remove(path)

    if folder.exists():
        on_error = "onexc" if sys.version_info >= (3, 12) else "onerror"  # onerror is deprecated from 3.12
        shutil.rmtree(folder, **{on_error: make_writable_and_retry})


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True
