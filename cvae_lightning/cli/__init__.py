"""Hydra glue for the entry scripts: the shared main and its one-line errors (main.py), the
check of command-line keys (overrides.py), run folders, resolvers and resuming (runs.py), and
the sweep report (sweep_report.py)."""
