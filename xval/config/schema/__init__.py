"""The schema of `config.ini`: every key of every section, its type, range and help,
derived from the typed section records (`xval.config.sections`, `xval.core.parameters`),
where each key is declared once as a field (`xval.core.settings.setting`).

One description serves four readers: `xval.config.load_config` (the file), the command
lines of `python -m preprocessing` and `python -m augmentation` (their flags' types,
choices and help, and the check of the merged values), `xval.config.params.resolve`
(instance parameters are the `[training]` keys) and the parameter reference
(`docs/hooks.py`). It imports of the project only the records, the core and `xval.tasks`
(whose registry gives the choices of `task_type` and `[report] selection_metric`).

Example:

```python
from xval.config import schema

schema.check("features", "n_mels", 0)          # ConfigurationError: ... expected an integer >= 1
schema.check_section("features", {"fmin": 100.0, "fmax": 50.0, ...})  # fmin >= fmax
```
"""

from xval.config.schema.arguments import add_arguments, augmented_versions
from xval.config.schema.checks import (
    Rule,
    bind_choices,
    bind_rules,
    check,
    check_section,
    label,
    parse,
    unknown_name,
    validate,
)
from xval.config.schema.choices import BACKENDS, COMPRESSIONS, selection_metrics, task_types
from xval.config.schema.render import defaults, render
from xval.config.schema.table import ADDED_KEYS, SCHEMA, SECTION_NOTES
from xval.core.settings import Key

__all__ = [
    "ADDED_KEYS",
    "BACKENDS",
    "COMPRESSIONS",
    "SCHEMA",
    "SECTION_NOTES",
    "Key",
    "Rule",
    "add_arguments",
    "augmented_versions",
    "bind_choices",
    "bind_rules",
    "check",
    "check_section",
    "defaults",
    "label",
    "parse",
    "render",
    "selection_metrics",
    "task_types",
    "unknown_name",
    "validate",
]
