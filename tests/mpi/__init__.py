"""Tests run in 2 ranks under mpiexec (a package, so that its conftest does not shadow tests/conftest.py)."""
