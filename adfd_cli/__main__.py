"""`python -m adfd_cli` runs the `adfd` command."""

from adfd_cli.main import main

if __name__ == "__main__":  # spawned worker processes import this module too
    main()
