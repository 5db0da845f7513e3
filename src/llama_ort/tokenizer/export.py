"""Putting a checkpoint's tokenizer into a model folder, in the files `Tokenizer.from_folder` reads.

- Hugging Face folders already hold them: copied as they are.
- Meta's layout has only tokenizer.model (next to the weights' folder, or in it): copied, with a
  tokenizer_config.json that names the special tokens and carries Llama 2's chat template.
- GGUF files hold the vocabulary as metadata: rebuilt by from_gguf.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import sentencepiece

from ..errors import fail
from .chat import LLAMA2_CHAT_TEMPLATE
from .config import CHAT_TEMPLATE_FILE, CONFIG_FILE, GENERATION_CONFIG_FILE, SPECIAL_TOKENS_FILE
from .from_gguf import export_gguf_tokenizer
from .vocab import SENTENCEPIECE_MODEL, TOKENIZER_JSON

HF_FILES = (TOKENIZER_JSON, SENTENCEPIECE_MODEL, CONFIG_FILE, SPECIAL_TOKENS_FILE, GENERATION_CONFIG_FILE,
            CHAT_TEMPLATE_FILE)


def export_tokenizer(checkpoint, dest_folder: str | Path) -> list[Path]:
    """Write the tokenizer of `checkpoint` (a Checkpoint: its `format` and `path`) into `dest_folder`.

    Returns the files written.
    """
    dest = Path(dest_folder)
    dest.mkdir(parents=True, exist_ok=True)
    exporters = {"hf": export_hf, "meta": export_meta, "gguf": export_gguf_tokenizer}
    if checkpoint.format not in exporters:
        raise fail(checkpoint.path, f"checkpoint format {checkpoint.format!r} has no tokenizer export")
    return exporters[checkpoint.format](Path(checkpoint.path), dest)


def export_hf(folder: Path, dest: Path) -> list[Path]:
    if not any((folder / name).exists() for name in (TOKENIZER_JSON, SENTENCEPIECE_MODEL)):
        raise fail(folder, f"has no {TOKENIZER_JSON} or {SENTENCEPIECE_MODEL}; download the tokenizer files "
                   "of the model too (llama-ort download --hf fetches them)")
    return [Path(shutil.copyfile(folder / name, dest / name)) for name in HF_FILES if (folder / name).exists()]


def export_meta(folder: Path, dest: Path) -> list[Path]:
    # Meta's download puts tokenizer.model beside the model folders (llama-2-7b-chat/, ...), not in them.
    found = [path for path in (folder / SENTENCEPIECE_MODEL, folder.parent / SENTENCEPIECE_MODEL) if path.exists()]
    if not found:
        raise fail(folder, f"no {SENTENCEPIECE_MODEL} in it or beside it; download it with the weights "
                   "(llama-ort download --meta-url fetches it)")
    model = Path(shutil.copyfile(found[0], dest / SENTENCEPIECE_MODEL))
    sp = sentencepiece.SentencePieceProcessor(model_file=str(model))
    config = {
        "bos_token": sp.id_to_piece(sp.bos_id()),
        "eos_token": sp.id_to_piece(sp.eos_id()),
        "unk_token": sp.id_to_piece(sp.unk_id()),
        "add_bos_token": True,
        "add_eos_token": False,
        "chat_template": LLAMA2_CHAT_TEMPLATE,
        # For transformers: encode each text between special tokens with sentencepiece's leading space,
        # as Meta's reference code does (its non-legacy mode drops that space after "<s>").
        "legacy": True,
        "tokenizer_class": "LlamaTokenizer",
    }
    (dest / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return [model, dest / CONFIG_FILE]

