"""The training layer: one fold (prepare, fit, evaluate, package), model assembly and
loading, embedding classifiers. Imports Keras where used: set the backend first."""
