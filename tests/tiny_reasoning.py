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


SCRIPT = {
    # a block that ends: " plus" -> "<think>Question:</think>\n answer is four", then the end of the turn
    " plus": "<think>", "<think>": "Question", "Question": ":", ":": "</think>", "</think>": "\n",
    "\n": " answer", " answer": " is", " is": " four",
    # thinking that never ends (a prompt that opened the block): " lazy dog lazy dog ..."
    " lazy": " dog", " dog": " lazy",
    # no thinking at all: " France" -> " Paris"
    " France": " Paris",
}
"""The scripted model's next token after each token (every other token is followed by the end
of the turn): what it writes depends on the last token of the prompt."""


def build_scripted_model(path: Path, *, template: str = QWEN3_STYLE_TEMPLATE, script: dict[str, str] = SCRIPT) -> Path:
    """Save a real ``LlamaForCausalLM`` over :func:`build_reasoning_tokenizer`'s tokenizer whose
    greedy continuation of a token is fixed by ``script`` (a bigram model, made exactly: one-hot
    embeddings, attention and MLP outputs zero, the head a transition matrix), so tests decide when
    ``</think>`` comes. It runs through every part of the decode loop (prefill, key/value cache,
    batches) like any model."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    path = Path(path)
    tok = build_reasoning_tokenizer(path, template=template)
    vocab = len(tok)
    hidden = -(-vocab // 8) * 8
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=8, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=4, max_position_embeddings=512, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id, tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.model.embed_tokens.weight[:, :vocab] = torch.eye(vocab)
        for norm in (model.model.norm, *(m for layer in model.model.layers for m in (layer.input_layernorm, layer.post_attention_layernorm))):
            norm.weight.fill_(1.0)
        head = model.lm_head.weight
        head[tok.eos_token_id, :vocab] = 1.0  # by default: the end of the turn
        for before, after in script.items():
            (b,), (a,) = tok.encode(before, add_special_tokens=False), tok.encode(after, add_special_tokens=False)
            head[:, b] = 0.0
            head[a, b] = 1.0
    model.generation_config.eos_token_id = tok.eos_token_id
    model.save_pretrained(path)
    return path
