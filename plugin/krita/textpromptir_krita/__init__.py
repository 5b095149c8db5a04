"""TextPromptIR for Krita: Filter > Restore with Text Prompt..."""

import os
import sys

# The client and wire packages travel inside this one (installer/plugins.py: lay_out_krita), because
# Krita's Import Python Plugin from File... extracts only the package that the .desktop file names.
_BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bundled")
if _BUNDLED not in sys.path:
    sys.path.insert(0, _BUNDLED)

from krita import Krita  # noqa: E402

from .extension import RestoreExtension  # noqa: E402

Krita.instance().addExtension(RestoreExtension(Krita.instance()))
