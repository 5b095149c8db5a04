"""Where the shipped files are: weights, the instruction corpus, samples, training configs.

The repository's `resources/` folder is installed as the package
`textpromptir_resources` (pyproject.toml maps it), so the import system finds
it wherever pip put it: a checkout's editable install or a wheel in any
site-packages. Nothing here depends on where this source file sits.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource(*parts: str) -> Path:
    """The path of a shipped file, e.g. `resource("weights", "textpromptir-lite.safetensors")`."""
    return Path(str(files("textpromptir_resources").joinpath(*parts)))
