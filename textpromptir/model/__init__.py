"""The restoration backbone of TextPromptIR."""

from .config import SIZES, ModelConfig
from .network import TextPromptIR

__all__ = ["SIZES", "ModelConfig", "TextPromptIR"]
