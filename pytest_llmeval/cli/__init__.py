"""The command line: ``python -m pytest_llmeval COMMAND`` (also the ``pytest-llmeval`` script).

Each subcommand is one :class:`~pytest_llmeval.cli.core.Command` (its name, its arguments and
the function that runs it), listed once in :data:`pytest_llmeval.cli.main.COMMANDS`. Parsing
arguments and choosing exit statuses happen here; the work is done in
:mod:`pytest_llmeval.results`. A usage error exits :data:`~pytest_llmeval.cli.core.EXIT_USAGE`
(3) in every subcommand. Nothing here imports the pytest plugin.
"""
