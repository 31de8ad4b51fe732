"""A tiny tokenizer and chat template with real reasoning delimiters, built in tests (no hub).

The template mimics the thinking parts of Qwen3's chat template (Qwen/Qwen3-8B,
``tokenizer_config.json``, Apache-2.0): an earlier assistant answer is split at ``</think>`` and
only its answer is kept, and ``enable_thinking=False`` closes an empty block
(``<think>\\n\\n</think>\\n\\n``) after the generation prompt. ``<think>`` and ``</think>`` are single
tokens that are not special, as in Qwen3's vocabulary, so decoding keeps them. ``OPENING_TEMPLATE`` is
the DeepSeek-R1 style: the generation prompt itself opens the block.
"""

from __future__ import annotations

from pathlib import Path

QWEN3_STYLE_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message.role == 'assistant' %}"
    "{%- set content = message.content %}"
    "{%- if '</think>' in content %}{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
    "{{- '<|im_start|>assistant\\n' + content + '<|im_end|>\\n' }}"
    "{%- else %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}"
    "{%- endif %}"
)

OPENING_TEMPLATE = (
    "{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"
)

THINK_TOKENS = ["<think>", "</think>"]


def build_reasoning_tokenizer(path: Path, *, template: str = QWEN3_STYLE_TEMPLATE):
    """Save and return a byte-level BPE tokenizer whose vocabulary has ``<think>`` and ``</think>``
    as single (non-special) tokens, with ``template`` as its chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from tiny import CORPUS

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token="<|im_start|>")
    fast.add_tokens(THINK_TOKENS)
    fast.chat_template = template
    fast.save_pretrained(path)
    return fast
