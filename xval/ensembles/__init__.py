"""Ensembles of instances, one package above the layers that run, show and predict them
(`pyproject.toml` places it): those never import it; `run.install` hands them its parts, and
the entry points call it (the command lines, `from xval import Experiment`). From the top
down:

- `run`: an ensemble in a run, and for `python -m xval ensemble`; `install`;
- `compute`: the members' predictions fused fold by fold (`FusedEnsemble`);
- `fusion`: the grid of weights, their choice, the fused scores;
- `tables`: the Ensembles sheet and the notes under the results tables, as data the report
  renders (`install_report`);
- `predict`, `export`: `predict` and `export` on an ensemble's folder (and the exported
  model card's section);
- `members`: a member's folder, and whether it was trained again.

Outside it: the declaration, `experiment[3] = Ensemble(1, 2)`, with the experiment's
(`xval.running.declaration`); the record `ensemble.json` and the weightings with the records
the results store reads (`xval.core.records.ensemble`); each task's fusion rule with the task
(`Scoring.fusion`, `xval.tasks.fusion`). The package imports nothing itself, so that the
report's part installs without the run's (`tables.install_report`).
"""
