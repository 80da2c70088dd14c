"""Ensembles of instances, one package; each module sits in the layer its work needs
(`pyproject.toml` places it), from the top down:

- `run` (running layer): an ensemble in a run, and for `python -m xval ensemble`;
- `compute` (running): the members' predictions fused fold by fold (`FusedEnsemble`);
- `fusion` (running): the grid of weights, their choice, the fused scores;
- `sheet`, `tables` (report): the Ensembles sheet, the notes under the terminal table and
  the Summary sheet;
- `predict`, `export` (inference): `predict` and `export` on an ensemble's folder (and the
  exported model card's section);
- `members` (beside the tasks): a member's folder, and whether it was trained again.

Outside it: the declaration, `experiment[3] = Ensemble(1, 2)`, with the experiment's
(`xval.running.declaration`); the record `ensemble.json` and the weightings with the records
the results store reads (`xval.core.records.ensemble`); each task's fusion rule with the task
(`Scoring.fusion`, `xval.tasks.fusion`). The package imports nothing itself.
"""
