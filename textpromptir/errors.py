"""Errors whose message tells the user what to do; each has its own exit code."""


class TextPromptIRError(Exception):
    """Base class: `str(error)` is a complete sentence for the user."""

    exit_code = 1


class PromptError(TextPromptIRError):
    exit_code = 2


class ImageError(TextPromptIRError):
    exit_code = 3


class WeightsError(TextPromptIRError):
    exit_code = 4


class DeviceError(TextPromptIRError):
    exit_code = 4  # like weights: the model cannot be loaded as asked


class OutOfMemory(TextPromptIRError):
    exit_code = 5


class Cancelled(TextPromptIRError):
    exit_code = 130
