"""One module per stage command. Each defines ``register(app)`` that adds its typer command(s).

Modules here must import nothing heavy at module level (torch, transformers, sentence-transformers,
datasets, dspy): ``llmlabel --help`` imports all of them and must stay fast.
"""

#: Modules registered by llmlabel.cli, in the order their commands appear in --help.
COMMAND_MODULES: list[str] = []
