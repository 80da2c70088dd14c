"""The configuration layer: the schema (the one source of parameter names, types, ranges
and help), `config.ini` loading, instance parameters and the search space.

Example:

```python
from xval.config import load_config

config = load_config("config.ini")
config.training.epochs
```
"""

from xval.config.loader import Config, find_config, load_config

__all__ = ["Config", "find_config", "load_config"]
