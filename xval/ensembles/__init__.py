"""Ensembles of instances, each aspect in one place:

- the declaration, `experiment[3] = Ensemble(1, 2)`: `xval.running.declaration.Ensemble`;
- the record, `ensemble.json`, and the weightings: `xval.core.records.ensemble`;
- the arithmetic (clips pooled, the weight grid, the fused scores): `xval.tasks.fusion`;
- the members and the computation, fold by fold: `xval.running.ensembles.compute`;
- an ensemble in a run and from the command line: `xval.running.ensembles.run`
  (`python -m xval ensemble`: `xval.cli.ensemble`);
- prediction and export from an ensemble: `xval.inference.ensembles` and
  `xval.inference.export_ensemble`;
- its sheet in the workbook: `xval.report.workbook.ensembles`.

The package imports nothing itself: the recorder imports `compute`, which `run` imports in
turn with the recorder.
"""
