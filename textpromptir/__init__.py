"""TextPromptIR: image restoration guided by a plain-language prompt."""

__version__ = "0.1.0"
