"""One module per ``kaiops`` command group; ``flows/cli.py`` assembles them."""
