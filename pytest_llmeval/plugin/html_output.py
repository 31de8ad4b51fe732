"""``--llmeval-html=PATH``: the run's self-contained HTML report, written at the end of the session."""

from __future__ import annotations

from typing import Any

from pytest_llmeval.plugin.run_options import history_path
from pytest_llmeval.plugin.state import LLMEvalState


def write_html(state: LLMEvalState, report: Any) -> str | None:
    """Write the report when ``--llmeval-html`` asks for it (after the run history, so its charts
    include this run); returns a one-line error when the file cannot be written."""
    path = state.options.path("html")
    if path is None:
        return None
    from pytest_llmeval.results.html import run_page, write_page
    from pytest_llmeval.results.samplefile import sample_json

    records = sorted(state.records, key=lambda r: (r.suite, r.case_id))
    data = run_page(report.to_json(), [sample_json(r) for r in records], history=history_path(state.config, state.options))
    try:
        write_page(path, data)
    except OSError as exc:
        return f"llmeval: could not write the HTML report {path}: {exc}; check --llmeval-html and its permissions"
    state.say(f"llmeval: HTML report written to {path}")
    return None
