"""The running layer: `Experiment` (declaration and facade), the planner, scheduler,
recorder, refit and search runner."""
