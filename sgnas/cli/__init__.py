"""Command-line interface; see :mod:`sgnas.cli.main`."""
