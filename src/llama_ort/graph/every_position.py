"""A built model's head turned to every position, for scoring text: logits [batch * seq_len, vocab].

A model built without --all-logits (the one users have) picks each row's last hidden state before lm_head
(llama.last_positions: GatherElements `head.last`, then Squeeze `head.last_hidden` to [batch, hidden]). Here
that Squeeze becomes a Flatten of the hidden states the gather read, [batch, seq_len, hidden] ->
[batch * seq_len, hidden], so lm_head and the argmax run on every position. Nothing else changes: the weights
stay in their external file, and a one-token step (the merged layout's decoder_with_past, which has no gather)
gives its one position already. The gather stays, unread.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import helper

from .. import model_format as io
from ..errors import fail

GATHER_OUTPUT, SQUEEZE_OUTPUT = "head.last", "head.last_hidden"  # llama.last_positions' outputs, scope included
POSITIONS = "batch_x_seq_len"  # the logits' first dimension


def every_position_model(path: Path) -> bytes:
    """The decoder at `path` (built by llama.py without --all-logits) with its head rewritten, serialized without
    its weights: the session finds them beside `path` (session.model_external_initializers_file_folder_path)."""
    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:  # protobuf's DecodeError and the like, on a damaged file
        raise fail(path, f"cannot be read as an ONNX model ({type(e).__name__}); rebuild it with "
                         "`llama-ort optimize`") from None
    if rewrite_head(model.graph) == 0:
        raise fail(path, f"has no {GATHER_OUTPUT} -> {SQUEEZE_OUTPUT} head to turn to every position: rebuild it "
                         "with this version of `llama-ort optimize`")
    for output in model.graph.output:
        if output.name in (io.LOGITS, io.NEXT_TOKEN):
            output.type.tensor_type.shape.dim[0].dim_param = POSITIONS
    return model.SerializeToString()


def rewrite_head(graph: onnx.GraphProto) -> int:
    """Replace the head's Squeeze in `graph` and its subgraphs (the If branches); returns how many."""
    gathers = {node.output[0]: node for node in graph.node
               if node.op_type == "GatherElements" and node.output[0].endswith(GATHER_OUTPUT)}
    replaced = 0
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                replaced += rewrite_head(attribute.g)
        if node.op_type == "Squeeze" and node.output[0].endswith(SQUEEZE_OUTPUT) and node.input[0] in gathers:
            hidden = gathers[node.input[0]].input[0]  # [batch, seq_len, hidden]
            node.CopyFrom(helper.make_node("Flatten", [hidden], list(node.output), axis=2,
                                           name=node.name.replace("last_hidden", "every_hidden")))
            replaced += 1
    return replaced
