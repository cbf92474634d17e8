"""The studies behind docs/results.md: plans, drivers and reports. Run each from the repository root as a module,
e.g. `python -m study.tasks_study report` (each module's docstring gives its commands)."""
