"""Chat template rendering: the helpers and Jinja settings transformers' templates rely on."""

from __future__ import annotations

import datetime

import pytest

from llama_ort.errors import LlamaOrtError
from llama_ort.tokenizer import render_chat

HELLO = [{"role": "user", "content": "héllo"}]


def test_blocks_are_trimmed_like_transformers():
    # The newline after a block tag and the indentation before one are dropped; other whitespace stays.
    template = ("{% for m in messages %}\n    {% if m.role == 'user' %}\n  {{ m.content }}\n"
                "    {% endif %}\n{% endfor %}")
    assert render_chat(template, HELLO) == "  héllo\n"


def test_tojson_keeps_unicode_and_takes_options():
    template = "{{ messages[0] | tojson }}|{{ {'b': 1, 'a': [2]} | tojson(indent=2, sort_keys=True) }}"
    assert render_chat(template, HELLO) == '{"role": "user", "content": "héllo"}|{\n  "a": [\n    2\n  ],\n  "b": 1\n}'


def test_strftime_now():
    assert render_chat("{{ strftime_now('%Y') }}", HELLO) == str(datetime.date.today().year)


def test_variables_and_generation_prompt():
    template = "{{ bos_token }}{{ messages[0].content }}{% if add_generation_prompt %}>{% endif %}"
    assert render_chat(template, HELLO, add_generation_prompt=True, bos_token="<s>") == "<s>héllo>"
    assert render_chat(template, HELLO, add_generation_prompt=False, bos_token="<s>") == "<s>héllo"


def test_generation_blocks_and_loop_controls_parse():
    template = "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}" \
               "{% generation %}{{ m.content }}{% endgeneration %}{% endfor %}"
    assert render_chat(template, HELLO * 2) == "héllo"


def test_raise_exception_is_a_user_error():
    with pytest.raises(LlamaOrtError, match="chat template: rejects these messages: no system role"):
        render_chat("{{ raise_exception('no system role') }}", HELLO)


def test_syntax_error_is_a_user_error():
    with pytest.raises(LlamaOrtError, match="chat template: line 1"):
        render_chat("{% for m in messages %}", HELLO)


def test_sandbox_blocks_python_internals():
    with pytest.raises(LlamaOrtError, match="chat template: cannot render these messages: .*unsafe"):
        render_chat("{{ ''.__class__.__mro__[1].__subclasses__() }}", HELLO)


def test_missing_field_is_a_user_error():
    with pytest.raises(LlamaOrtError, match="chat template: cannot render these messages"):
        render_chat("{{ messages[0].content + messages[0].name }}", HELLO)
