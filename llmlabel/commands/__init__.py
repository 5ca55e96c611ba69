"""One module per stage command. Each defines ``register(app)`` that adds its typer command(s).

Modules here must import nothing heavy at module level (torch, transformers, sentence-transformers,
datasets, dspy): ``llmlabel --help`` imports all of them and must stay fast.
"""

#: Modules registered by llmlabel.cli, in the order their commands appear in --help
#: (a name whose module does not exist yet is skipped; one that exists and fails to import is an error).
COMMAND_MODULES: list[str] = ["auto", "taxonomy", "label", "aggregate", "xmc", "distill", "run", "report", "review"]
