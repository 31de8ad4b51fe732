"""A scripted tool-calling model for tests: it runs through the real transformers backend
(tokenizer, chat template, padding, batches, ``model.generate``) and answers by a script.

- The tokenizer is byte-level: token ``3 + b`` is the byte ``b``; 0, 1 and 2 are ``<|endoftext|>``
  (padding), ``<|im_start|>`` and ``<|im_end|>`` (end of a message). Any text encodes.
- The chat template is ChatML: :data:`GENERIC_TEMPLATE` has no tool support (the plugin then uses
  its generic format), :data:`TOOLS_TEMPLATE` is Qwen2.5's (tools in the system message, calls in
  ``<tool_call>`` blocks, results in ``<tool_response>`` blocks).
- The model reads each row's prompt (the padding it is told to ignore left out), finds the last
  instruction, a user message that is not a tool result, and writes the step of it that comes
  after as many tool results as followed the instruction (see :func:`respond`). The next token is
  the next byte of that answer, so the output depends on the row alone, never on its batch.

Instructions are steps separated by `` ; ``:

- ``call NAME {JSON}``: a well-formed call of tool NAME with those arguments;
- ``raw TEXT``: a call block holding TEXT as it is (``raw {not json}``);
- ``say TEXT``: a plain answer; ``{result}`` in TEXT is the last tool result's first 80 characters;
- ``loop NAME {JSON}``: call NAME with those arguments, every turn, forever.

Once the steps run out the model answers ``done``. Register the architecture with
:func:`register` (in every process that loads it: a pytester run's conftest does).
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
OFFSET = len(SPECIALS)
EOS = 2
ASSISTANT = "<|im_start|>assistant\n"

GENERIC_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TOOLS_TEMPLATE = (Path(__file__).parent / "data" / "chat_templates" / "qwen2.5-instruct.jinja").read_text(encoding="utf-8")

_TURN = re.compile(r"<\|im_start\|>(\w+)\n(.*?)<\|im_end\|>", re.DOTALL)
_RESPONSE = re.compile(r"<tool_response[^>]*>\n?(.*?)\n?</tool_response>", re.DOTALL)


def respond(prompt: str) -> str:
    """The scripted answer to a rendered prompt (ChatML, ending with the assistant's header)."""
    turns = _TURN.findall(prompt)
    results = 0
    last_result = ""
    instruction = ""
    for role, text in reversed(turns):
        found = _RESPONSE.findall(text)
        if found:
            results += len(found)
            last_result = last_result or found[-1]
            continue
        if role == "user":
            instruction = text
            break
    steps = [s.strip() for s in instruction.split(" ; ") if s.strip()]
    if steps and steps[-1].startswith("loop "):
        return _call(steps[-1][len("loop ") :])
    if results >= len(steps):
        return "done"
    step = steps[results]
    verb, _, rest = step.partition(" ")
    if verb == "call":
        return _call(rest)
    if verb == "raw":
        return f"<tool_call>{rest}</tool_call>"
    if verb == "say":
        return rest.replace("{result}", last_result.strip()[:80])
    return step


def _call(rest: str) -> str:
    name, _, arguments = rest.strip().partition(" ")
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": json.loads(arguments or "{}")}) + "\n</tool_call>"


def _text(ids: list[int]) -> str:
    out = bytearray()
    for token in ids:
        out += SPECIALS[token].encode() if token < OFFSET else bytes([token - OFFSET])
    return out.decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=1)
def _classes() -> tuple[Any, Any]:
    import torch
    from transformers import GenerationMixin, PretrainedConfig, PreTrainedModel
    from transformers.modeling_outputs import CausalLMOutputWithPast

    class ScriptedConfig(PretrainedConfig):
        model_type = "llmeval-scripted"

        def __init__(self, vocab_size: int = OFFSET + 256, **kwargs: Any) -> None:
            kwargs.setdefault("eos_token_id", EOS)
            kwargs.setdefault("pad_token_id", 0)
            kwargs.setdefault("bos_token_id", 1)
            self.vocab_size = vocab_size
            self.num_hidden_layers, self.num_attention_heads, self.hidden_size = 1, 1, 1  # what generate's cache asks
            super().__init__(**kwargs)

    class ScriptedLM(PreTrainedModel, GenerationMixin):
        config_class = ScriptedConfig
        base_model_prefix = "scripted"
        _supports_cache_class = False

        def __init__(self, config: Any) -> None:
            super().__init__(config)
            self.weight = torch.nn.Parameter(torch.zeros(1))  # a model needs weights to save
            self.post_init()

        def _init_weights(self, module: Any) -> None:
            pass

        def get_input_embeddings(self) -> Any:
            return None

        def prepare_inputs_for_generation(self, input_ids: Any, attention_mask: Any = None, **kwargs: Any) -> dict[str, Any]:
            return {"input_ids": input_ids, "attention_mask": attention_mask}

        def forward(self, input_ids: Any, attention_mask: Any = None, **kwargs: Any) -> Any:
            batch = input_ids.shape[0]
            logits = torch.full((batch, 1, self.config.vocab_size), -100.0)  # generate reads the last position only
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            for row in range(batch):
                ids = [t for t, m in zip(input_ids[row].tolist(), mask[row].tolist()) if m]
                logits[row, 0, self.next_token(ids)] = 100.0
            return CausalLMOutputWithPast(logits=logits + 0 * self.weight)

        @staticmethod
        def next_token(ids: list[int]) -> int:
            text = _text(ids)
            cut = text.rfind(ASSISTANT)
            if cut < 0:
                return EOS
            prompt, written = text[: cut + len(ASSISTANT)], text[cut + len(ASSISTANT) :].encode()
            target = respond(prompt).encode()
            if not target.startswith(written) or len(written) >= len(target):
                return EOS
            return OFFSET + target[len(written)]

    return ScriptedConfig, ScriptedLM


def _byte_chars() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte (what a ByteLevel pre-tokenizer writes)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1), *range(ord("\u00ae"), ord("\u00ff") + 1)]
    out = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in out:
            out[b] = chr(256 + extra)
            extra += 1
    return out


def register() -> None:
    """Make ``AutoModelForCausalLM`` load the scripted architecture (once per process)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config, model = _classes()
    try:
        AutoConfig.register(config.model_type, config)
        AutoModelForCausalLM.register(config, model)
    except ValueError:  # registered already in this process
        pass


def build_scripted_model(path: Path, *, template: str = TOOLS_TEMPLATE) -> Path:
    """Save the scripted model and its byte-level tokenizer (with ``template``) to ``path``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    chars = _byte_chars()
    vocab = {name: i for i, name in enumerate(SPECIALS)} | {chars[b]: OFFSET + b for b in range(256)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>")
    fast.add_special_tokens({"additional_special_tokens": SPECIALS})
    fast.chat_template = template
    fast.save_pretrained(path)
    register()
    config_class, model_class = _classes()
    model = model_class(config_class())
    model.generation_config.eos_token_id = EOS
    model.generation_config.pad_token_id = 0
    model.save_pretrained(path)
    return path
