"""TextPromptIR: image restoration guided by a plain-language prompt."""

import os

# PyTorch's OpenMP threads spin while they wait for each other. When anything
# else wants a core (the image editor, another job), a spinning thread waits
# for a peer the scheduler has parked: beside one busy process, a 1 MP restore
# on 2 cores took 6.9-10.1 s spinning and 4.7-6.3 s sleeping; on an idle
# machine the two are within noise (benchmarks/wait_policy.py, PROFILE.md).
# OpenMP reads this once, when torch loads it, so it must be set before torch
# is imported; a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
