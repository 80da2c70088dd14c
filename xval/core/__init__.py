"""The core layer: errors, atomic files, the typed records and the results-folder layout,
logs, interrupts, the code snapshot. It imports nothing of the project outside itself."""
