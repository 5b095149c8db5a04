"""The restorations TextPromptIR offers, defined once for text, training and evaluation.

The order of REGISTRY is the order of the text encoder's degradation head and
of every label set in the instruction corpus; changing it invalidates the
shipped text weights (their metadata records it).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Task:
    key: str  # the name code, corpus labels and weights use: "low_light"
    name: str  # what a user reads: "low light"
    prompt: str  # the plain prompt evaluation restores with


REGISTRY = (
    Task("noise", "noise and grain", "remove the noise"),
    Task("rain", "rain streaks", "remove the rain streaks"),
    Task("haze", "haze and fog", "remove the haze"),
    Task("blur", "blur", "deblur this photo"),
    Task("low_light", "low light", "brighten this dark photo"),
    Task("jpeg", "JPEG artifacts", "remove the JPEG artifacts"),
)
TASKS = tuple(task.key for task in REGISTRY)
TASK_NAMES = {task.key: task.name for task in REGISTRY}
EVALUATION_PROMPTS = {task.key: task.prompt for task in REGISTRY}

# The strength words a prompt can carry, weakest first.
STRENGTHS = ("slight", "moderate", "heavy")
# The strength head's classes: None first, for a prompt that carries no strength word.
STRENGTH_CLASSES = (None, *STRENGTHS)
# How much of the restoration each strength word asks for (restored * s + original * (1 - s)); the plugins'
# strength slider starts there. "slightly" asks for a lighter touch; heavier words cannot ask for more than all.
SUGGESTED_STRENGTH = {None: 1.0, "slight": 0.6, "moderate": 1.0, "heavy": 1.0}
