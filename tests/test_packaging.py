"""Installing as artists and Python users do: the plugins' zips, Krita's importer, and a wheel outside the checkout.

The zip for Krita goes through Krita's own importer (plugin_importer.py, run
as Krita runs it) into a fresh profile, and the real Krita (under Xvfb)
shows the action and, with no engine installed, the message saying what to
run. The wheel is built with `python -m build`, installed by pip into a new
virtual environment outside the checkout, and restores a photo there.
"""

from __future__ import annotations

import configparser
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from installer.package import GIMP_ZIP, KRITA_ZIP, package_plugins
from installer.plugins import set_ini_value
from textpromptir import cli
from textpromptir_client.installation import install_command, missing_engine
from textpromptir_client.settings import Settings

from conftest import photo_like
from krita_host import krita_available, run_scenarios

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
