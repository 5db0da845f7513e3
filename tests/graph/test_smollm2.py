"""The real SmolLM2-135M-Instruct, built by the pipeline: fp32 parity with transformers, fp16 and int4 quality."""

import numpy as np

from llama_ort.quant.options import QuantOptions
from llama_ort.runtime.session import load_model
from llama_ort.tokenizer import Tokenizer
from llama_ort.verify.perplexity import perplexity
from llama_ort_testing.reference import Stepper, hf_last_logits

CONVERSATION = [{"role": "user", "content": "What is the lightest element, and why is it so common in stars?"}]
TEXT = (
    "The hydrogen atom is the simplest of all atoms. It has one proton in its nucleus and one electron around it. "
    "Because it is so light and so simple, hydrogen formed first after the Big Bang, and it is still the most common "
    "element in the universe. Stars are mostly hydrogen: in their hot cores, hydrogen nuclei fuse into helium and "
    "release the energy that makes stars shine. On Earth, hydrogen is found mainly in water and in living things. "
    "It burns in air with a pale flame, and the only product is water, which is why people study it as a clean fuel."
)


def greedy_logits(folder, prompt, steps):
    stepper = Stepper(folder, max_seq_len=len(prompt) + steps + 1)
    out = stepper.start([prompt])
    logits, tokens = [out["logits"][0]], [int(out["next_token"][0])]
    for _ in range(steps):
        out = stepper.step([tokens[-1]])
        logits.append(out["logits"][0])
        tokens.append(int(out["next_token"][0]))
    return np.stack(logits), tokens


def test_fp32_prompt_and_32_decode_steps_match_transformers(build_smollm2, smollm2_reference):
    folder = build_smollm2(precision="fp32")
    prompt = Tokenizer.from_folder(folder).encode_chat(CONVERSATION)
    logits, tokens = greedy_logits(folder, prompt, 32)
    sequence = list(prompt)
    for step, token in enumerate(tokens):
        expected = hf_last_logits(smollm2_reference, sequence)
        np.testing.assert_allclose(logits[step], expected, atol=1e-3, rtol=0, err_msg=f"step {step}")
        assert token == expected.argmax()
        sequence.append(token)


def test_fp16_logits_stay_close_to_fp32(build_smollm2):
    fp32, fp16 = build_smollm2(precision="fp32"), build_smollm2(precision="fp16")
    prompt = Tokenizer.from_folder(fp32).encode_chat(CONVERSATION)
    reference, tokens = greedy_logits(fp32, prompt, 8)
    stepper = Stepper(fp16, max_seq_len=len(prompt) + 10)
    half = [stepper.start([prompt])["logits"][0]]
    for token in tokens[:-1]:  # teacher-forced on the fp32 tokens, so both see the same sequence
        half.append(stepper.step([token])["logits"][0])
    half = np.stack(half)
    # relative to the logits' size (‖Δ‖ / ‖ref‖ per step); the largest single difference is ~0.07 on logits ~15
    relative = np.linalg.norm(half - reference, axis=-1) / np.linalg.norm(reference, axis=-1)
    assert relative.max() <= 5e-2
    assert (half.argmax(-1) == reference.argmax(-1)).all()


def test_int4_perplexity_within_ten_percent_of_fp32(build_smollm2):
    """The embedded weights are already 4-bit (GGUF Q4_1, block 32, w = d * code + m). Min/max blocks with
    float zero points keep that grid (--zero-points); symmetric blocks, the fast default, cannot place m and
    lose more: measured 14.2 (fp32), 15.4 (zero points), 19.1 (symmetric; 19.4 with --embeddings int4) on
    this text."""
    fp32 = build_smollm2(precision="fp32")
    ids = Tokenizer.from_folder(fp32).encode(TEXT)

    def score(folder) -> float:
        return perplexity(load_model(folder, every_position=True), ids).value

    reference = score(fp32)
    zero_points = score(build_smollm2(precision="int4", quant=QuantOptions(symmetric=False)))
    symmetric = score(build_smollm2(precision="int4"))
    assert reference < 30  # the text is plain English: a broken model would be far off
    assert zero_points <= reference * 1.10
    assert symmetric <= reference * 1.40
