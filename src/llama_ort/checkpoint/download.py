"""Getting weights: Llama 2 from Meta's presigned URL, or any model from the Hugging Face Hub.

Meta's flow (its download.sh): the e-mail Meta sends holds a URL valid for 24 hours with a `*` in it; each file's
path in the release replaces the `*`. Every file streams into `<name>.part` and is renamed when whole, so a
file with its final name is complete; an interrupted download resumes with an HTTP Range request. Weights and
tokenizer are checked against the MD5s of the release's checklists (lines "md5  filename") before the rename.
"""

from __future__ import annotations

import hashlib
import os
from http.client import HTTPException
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from ..errors import fail

# Llama 2 releases: name (--model) -> number of consolidated.NN.pth shards.
LLAMA2_SHARDS = {"7b": 1, "7b-chat": 1, "13b": 2, "13b-chat": 2, "70b": 8, "70b-chat": 8}
LLAMA2_REQUEST_PAGE = "https://ai.meta.com/resources/models-and-libraries/llama-downloads/"

# Files a Hugging Face model folder needs: config, tokenizer, safetensors weights (not .bin/.pth/.gguf copies).
HF_PATTERNS = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer.model", "tokenizer_config.json",
               "special_tokens_map.json", "chat_template.jinja", "*.safetensors", "model.safetensors.index.json"]

CHUNK_BYTES = 1 << 20
TIMEOUT_S = 60


def llama2_files(model: str) -> list[tuple[str, str | None]]:
    """(path in the release, the checklist holding its MD5 or None), checklists before the files they check."""
    if model not in LLAMA2_SHARDS:
        raise fail("--model", f"unknown Llama 2 model {model!r}; choose one of {', '.join(LLAMA2_SHARDS)}")
    folder = f"llama-2-{model}"
    checklist = f"{folder}/checklist.chk"
    shards = [f"{folder}/consolidated.{i:02d}.pth" for i in range(LLAMA2_SHARDS[model])]
    return [
        ("LICENSE", None),
        ("USE_POLICY.md", None),
        ("tokenizer_checklist.chk", None),
        ("tokenizer.model", "tokenizer_checklist.chk"),
        (checklist, None),
        (f"{folder}/params.json", checklist),
        *((shard, checklist) for shard in shards),
    ]


def download_llama2(url: str, model: str, dest: str | Path, show_progress: bool = True) -> Path:
    """Download Llama 2 `model` ("7b-chat" ...) from Meta's presigned `url` into `dest`, in Meta's layout
    (tokenizer.model at the top, weights in llama-2-<model>/). Returns the model's folder."""
    if "*" not in url:
        raise fail("--meta-url", "expected the URL from Meta's e-mail, which has a '*' where each file's path "
                   "goes; paste it whole")
    dest = Path(dest)
    files = llama2_files(model)
    with download_progress(show_progress) as progress:
        for name, checklist in files:
            md5 = checklist_md5(dest / checklist, Path(name).name) if checklist else None
            fetch(url.replace("*", name, 1), dest / name, md5, progress)
    return dest / f"llama-2-{model}"


def checklist_md5(checklist: Path, name: str) -> str:
    """The MD5 `checklist` (md5sum's format) gives for the file `name`."""
    for line in checklist.read_text().splitlines():
        md5, _, listed = line.strip().partition(" ")
        if listed.strip().lstrip("*") == name:  # md5sum writes "*" before names read in binary mode
            return md5.lower()
    raise fail(checklist, f"has no MD5 for {name}; delete the checklist and download again")


def file_md5(path: Path):
    """The MD5 of `path`, as a hash object that later bytes can update."""
    digest = hashlib.md5()
    with path.open("rb") as f:
        while chunk := f.read(8 * CHUNK_BYTES):
            digest.update(chunk)
    return digest


def fetch(url: str, path: Path, md5: str | None, progress: Progress) -> None:
    """Download `url` to `path` unless a complete copy is there; resumes `path`.part, verifies `md5` if given."""
    if path.exists():
        if md5 is None or file_md5(path).hexdigest() == md5:
            return
        path.unlink()  # complete but failing its checksum: fetch it again
    part = path.with_name(path.name + ".part")
    digest = download_part(url, part, path, progress)
    if md5 is not None and digest.hexdigest() != md5:
        part.unlink()
        raise fail(path, f"MD5 {digest.hexdigest()} does not match {md5} from the checklist: the download was "
                   "corrupt and is deleted; run the command again to fetch it anew")
    os.replace(part, path)


def download_part(url: str, part: Path, path: Path, progress: Progress):
    """Bring `part` up to the whole file at `url`, keeping the bytes it holds; returns the MD5 hash of the whole."""
    part.parent.mkdir(parents=True, exist_ok=True)
    have_bytes = part.stat().st_size if part.exists() else 0
    response = open_url(url, have_bytes, path)
    if response is None:  # the server has nothing past the part's end: it is whole already
        return file_md5(part)
    with response:
        if response.status != 206:  # a fresh download, or the server ignored the Range and sends it all
            have_bytes = 0
        digest = file_md5(part) if have_bytes else hashlib.md5()
        total_bytes = have_bytes + int(response.headers.get("Content-Length", 0))
        task = progress.add_task(path.name, total=total_bytes or None, completed=have_bytes)
        with part.open("r+b" if have_bytes else "wb") as out:
            out.seek(have_bytes)
            out.truncate()
            try:
                while chunk := response.read(CHUNK_BYTES):
                    out.write(chunk)
                    digest.update(chunk)
                    progress.advance(task, len(chunk))
            except (OSError, HTTPException) as e:  # connection reset, timeout, truncated body
                raise fail(path, f"download interrupted ({e}); run the command again to resume it") from e
            size_bytes = out.tell()
    if total_bytes and size_bytes != total_bytes:
        raise fail(path, f"download stopped after {size_bytes} of {total_bytes} bytes; "
                   "run the command again to resume it")
    return digest


def open_url(url: str, have_bytes: int, path: Path):
    """The HTTP response for `url` from byte `have_bytes` on, or None if the file has no bytes past that."""
    headers = {"Range": f"bytes={have_bytes}-"} if have_bytes else {}
    try:
        return urlopen(Request(url, headers=headers), timeout=TIMEOUT_S)
    except HTTPError as e:
        if e.code == 416 and have_bytes:
            return None
        if e.code == 403:
            raise fail(path, f"the server refused the URL (HTTP 403): Meta's links expire 24 hours after the "
                       f"e-mail; request a new one at {LLAMA2_REQUEST_PAGE}") from e
        raise fail(path, f"HTTP {e.code} ({e.reason}) from {urlsplit(url).hostname}") from e
    except OSError as e:  # URLError: no such host, refused, timeout
        raise fail(path, f"cannot reach {urlsplit(url).hostname}: {e}") from e


def download_progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled)


def download_hf(repo_id: str, dest: str | Path, revision: str | None = None, endpoint: str | None = None) -> Path:
    """Download the config, tokenizer and safetensors files of Hugging Face model `repo_id` into `dest`.

    The token comes from the environment (HF_TOKEN) or a `hf auth login`, as huggingface_hub finds it.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        folder = Path(snapshot_download(repo_id, revision=revision, local_dir=dest, allow_patterns=HF_PATTERNS,
                                        endpoint=endpoint))
    except GatedRepoError as e:
        raise fail(repo_id, f"is gated: accept its license on https://huggingface.co/{repo_id}, then set HF_TOKEN "
                   "to a token of that account") from e
    except RepositoryNotFoundError as e:
        raise fail(repo_id, "no such model on the Hub, or it is private: check the name, or set HF_TOKEN") from e
    except RevisionNotFoundError as e:
        raise fail(repo_id, f"has no revision {revision!r}") from e
    except (LocalEntryNotFoundError, HfHubHTTPError) as e:
        raise fail(repo_id, f"download failed: {e}") from e
    if not any(folder.glob("*.safetensors")):
        raise fail(repo_id, "has no .safetensors weights; llama-ort reads Hugging Face checkpoints in safetensors")
    return folder
