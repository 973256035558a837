"""`python -m minifm ...` is the `minifm` command (minifm/cli.py)."""
from .cli import main

raise SystemExit(main())
