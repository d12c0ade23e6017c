"""The digest service's public module: what the other services use of digests, and the only
digest module they may import (checked by `lint-imports`, `[tool.importlinter]`).

Nothing yet: digests sit in the top layer beside the edge, so only notify_app uses them,
through `assemble.py` and the entry points named in `[tool.importlinter]`.
"""

__all__: list[str] = []
