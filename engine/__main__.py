"""``python -m engine`` starts the CLI."""

from engine.cli import main

main()
