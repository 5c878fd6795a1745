"""Orchestration: the judge, the prompt engineer, the workflow planner and the three phases
of self-evolving generation (docs/CONTRACTS.md §12). `run_evolution` is the entry point."""
