"""TextPromptIR: image restoration guided by a plain-language prompt."""

import os

# PyTorch's OpenMP threads spin while they wait for each other. When anything
# else wants a core (the image editor, another job), a spinning thread waits
# for a peer the scheduler has parked, and a restore beside another busy
# process slows down badly; sleeping threads cost nothing measurable on an
# idle machine (figures: benchmarks/wait_policy.py, PROFILE.md).
# OpenMP reads this once, when torch loads it, so it must be set before torch
# is imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
