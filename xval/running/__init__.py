"""The running layer: `Experiment` (declaration and facade), the runner, planner, scheduler,
recorder (the one writer of result files) and its listeners, refit, the search runner, the
process environment and the experiment script's command line."""
