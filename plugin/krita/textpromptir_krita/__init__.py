"""TextPromptIR for Krita: Filter > Restore with Text Prompt..."""

from krita import Krita

from .extension import RestoreExtension

Krita.instance().addExtension(RestoreExtension(Krita.instance()))
