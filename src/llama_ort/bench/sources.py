"""The model a benchmark runs, in the form each peer reads: made once under the work folder and reused.

llama-ort builds from the checkpoint itself (any format). onnxruntime-genai and transformers read a Hugging
Face folder: the checkpoint if it is one, else one written from its weights. llama.cpp reads a GGUF file: the
checkpoint if it is one of the asked type (the embedded model is Q4_1), else one converted from its weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..checkpoint import embedded_model_path, open_checkpoint
from ..checkpoint.random import write_gguf, write_hf
from ..checkpoint.spec import ModelSpec
from ..errors import fail
from ..model_format import MANIFEST, Manifest
from ..pipeline.run import checkpoint_name
from .placeholder_tokenizer import write_hf_tokenizer
from .random_checkpoint import DTYPES, SHARD_BYTES, make_random
from .shapes import get_shape


@dataclass
class Sources:
    workdir: Path
    spec: ModelSpec
    name: str  # for file names and the report
    checkpoint: Path | None  # None: the embedded model
    format: str  # the checkpoint's: hf, meta, gguf; "model" for a built llama-ort folder
    dtype: str  # of the Hugging Face folder written when the checkpoint is not one: fp32 or fp16
    built_precision: str | None = None  # a built llama-ort folder's precision

    @property
    def model_folder(self) -> Path | None:
        """A built llama-ort model folder, when that is what was given: nothing to build, nothing for the peers."""
        return self.checkpoint if self.format == "model" else None

    def _derived(self, what: str) -> Path:
        if self.format == "model":
            raise fail(self.checkpoint, "is a built model folder, which holds no weights to give other peers: "
                                        "benchmark its checkpoint instead")
        folder = self.workdir / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{self.name}-{what}"

    def hf_folder(self) -> Path:
        if self.format == "hf":
            return self.checkpoint
        path = self._derived(f"hf-{self.dtype}")
        if not path.exists():
            with open_checkpoint(self.checkpoint) as checkpoint:
                write_hf(self.spec, path, checkpoint.tensors(), DTYPES[self.dtype], shard_bytes=SHARD_BYTES)
            write_hf_tokenizer(self.spec, path)
        return path

    def gguf(self, gguf_type: str) -> Path:
        if self.format == "gguf":
            given = self.checkpoint or embedded_model_path()
            if gguf_matrix_type(given) == gguf_type:
                return given
        path = self._derived(f"{gguf_type}.gguf")
        if not path.exists():
            with open_checkpoint(self.checkpoint) as checkpoint:
                write_gguf(self.spec, path, checkpoint.tensors(), gguf_type)
        return path


def gguf_matrix_type(path: Path) -> str:
    """The type of a GGUF file's first attention matrix: Q4_1, F16 ..."""
    import gguf

    reader = gguf.GGUFReader(path)
    return next(t.tensor_type.name for t in reader.tensors if t.name == "blk.0.attn_q.weight")


def resolve(source: str | Path | None, shape: str | None, workdir: Path, device: str) -> Sources:
    """The benchmark's model: a named shape (a random checkpoint made once), a checkpoint, a built llama-ort
    folder, or with neither, the embedded model."""
    dtype = "fp16" if device == "cuda" else "fp32"
    if shape:
        spec = get_shape(shape)
        path = workdir / "checkpoints" / f"{shape}-random-{dtype}"
        if not path.exists():
            make_random(spec, path, dtype)
        return Sources(workdir, spec, shape, path, "hf", dtype)
    if source is not None and (Path(source) / MANIFEST).exists():
        manifest = Manifest.load(Path(source))
        return Sources(workdir, ModelSpec.from_dict(manifest.spec), Path(source).name, Path(source), "model", dtype,
                       manifest.precision)
    with open_checkpoint(source) as checkpoint:
        return Sources(workdir, checkpoint.spec, checkpoint_name(source), None if source is None else Path(source),
                       checkpoint.format, dtype)
