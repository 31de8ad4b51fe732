"""This suite evaluates the tiny model that train.py trains, not the example suites' shared
model: it is collected only when its folder (or a file in it) is named on the command line,
as in ``pytest example_suites/arithmetic_tiny --llmeval-model runs/arithmetic_tiny/final`` or
``le.evaluate(model, tokenizer, "example_suites/arithmetic_tiny")``."""

from pathlib import Path

HERE = Path(__file__).resolve().parent


def _named(config) -> bool:
    for arg in config.args:
        path = Path(str(arg).split("::", 1)[0])
        path = (path if path.is_absolute() else Path(config.invocation_params.dir) / path).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path, config):
    if collection_path.suffix == ".py" and collection_path.parent.resolve() == HERE and not _named(config):
        return True
    return None
