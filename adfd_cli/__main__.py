"""`python -m adfd_cli` runs the `adfd` command."""

from adfd_cli.main import run

run()
