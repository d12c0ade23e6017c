"""The realtime service's public module: what the other services use of the edge, and the
only realtime module they may import (checked by `lint-imports`, `[tool.importlinter]`).

Nothing yet: the edge sits in the top layer, so only notify_app uses it, through
`assemble.py` and the entry points named in `[tool.importlinter]`.
"""

__all__: list[str] = []
