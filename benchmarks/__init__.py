"""Benchmarks: run each as a module from the project root, e.g. `python -m
benchmarks.engine_overhead`; `benchmarks/README.md` lists them."""
