"""Chat templates: Jinja programs that turn a list of messages into one prompt string.

Rendered the way transformers renders them, so a model folder's template gives the same prompt here as in
`apply_chat_template`: a sandboxed environment (templates come from downloaded files), trim_blocks and
lstrip_blocks, a `tojson` that keeps non-ASCII text, and the helpers templates call (`raise_exception`,
`strftime_now`).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import fail

# Hugging Face's template for Llama-2-*-chat: Meta's reference format, with a system prompt folded into the first
# user turn. It writes BOS and EOS itself, so a prompt it renders is encoded without adding special tokens.
LLAMA2_CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}"
    "{% set loop_messages = messages %}{% set system_message = false %}"
    "{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}"
    "{% set content = message['content'] %}"
    "{% endif %}"
    "{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}"
    "{% endif %}"
    "{% endfor %}"
)


class _GenerationBlock(jinja2.ext.Extension):
    """`{% generation %}...{% endgeneration %}`: transformers marks assistant text with it for training masks.

    We only need such templates to parse, so the block renders its body unchanged.
    """

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class _TemplateError(Exception):
    """What `raise_exception` raises: the template's own verdict on the messages, kept apart from Jinja's errors."""


def _raise_exception(message: str):
    raise _TemplateError(message)


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    # Jinja's own tojson escapes HTML characters, which would change the prompt.
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@functools.lru_cache(maxsize=8)
def _compile(template: str) -> jinja2.Template:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[_GenerationBlock, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    return env.from_string(template)


def render_chat(template: str, messages: list[dict], add_generation_prompt: bool = True, **variables) -> str:
    """The prompt `template` makes of `messages`; `variables` (bos_token, eos_token, tools ...) reach the template."""
    try:
        compiled = _compile(template)
    except jinja2.TemplateSyntaxError as e:
        raise fail("chat template", f"line {e.lineno}: {e.message}; fix chat_template in tokenizer_config.json") from e
    try:
        return compiled.render(messages=messages, add_generation_prompt=add_generation_prompt, **variables)
    except _TemplateError as e:
        raise fail("chat template", f"rejects these messages: {e}") from e
    except jinja2.TemplateError as e:  # a message without a field the template reads, a sandbox refusal
        raise fail("chat template", f"cannot render these messages: {e}") from e
