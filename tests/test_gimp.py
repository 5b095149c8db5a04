"""The GIMP plug-in inside the real GIMP 3.0 (gimp-console in a Debian trixie chroot), called as a script would.

tests/gimp_chroot.sh builds the chroot once (`.ci/run` does); without it the
tests that need GIMP skip, except where CI or TEXTPROMPTIR_REQUIRE_GIMP is
set: there they fail. The worker runs here, on the host, from this environment, and GIMP's
plug-in reaches it on loopback through a runtime folder both see. One GIMP
session runs the scenarios with a worker, a second one runs those without;
each test then checks the status and message GIMP returned, the layer stack
in GIMP and in the saved XCF, and the restored layer's pixels against the
engine run here on the same pixels.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from installer.plugins import install_gimp, write_settings
from textpromptir.engine.images import encode_png16
from textpromptir.engine.restore import Restorer, blend
from textpromptir.engine.weights import save_weights
from textpromptir.metrics import psnr
from textpromptir_client.client import Image as Pixels
from textpromptir_client.client import connect
from textpromptir_client.settings import Settings
from textpromptir_wire import discovery

from conftest import photo_like, untrained_model
from gimp_host import fake_prompt_program, gimp_available, gimp_required, install_profile, run_gimp

pytestmark = pytest.mark.slow
CONTEXT = 32  # the plug-in's margin around a selection
NOISE = "remove the noise"
HAZE_HALF = '{"prompt": "remove the haze", "strength": 0.5}\n'  # what the dialog program prints


def scenarios(folder: Path) -> list[dict]:
    photo = photo_like(120, 160)
    Image.fromarray(photo).save(folder / "photo.png")
    (folder / "photo16.png").write_bytes(encode_png16(photo.astype(np.uint16) * 257 + 100))
    document = str(folder / "photo.png")
    return [
        {"name": "full", "document": document, "prompt": NOISE},
        {"name": "rectangle", "document": document, "prompt": "remove the rain", "rect": [50, 40, 60, 30]},
        {"name": "ellipse", "document": document, "prompt": NOISE, "ellipse": [20, 10, 90, 70]},
        # the layer sticks out of the canvas at the top and right; the selection sticks out of the layer
        {"name": "offset", "document": document, "prompt": NOISE, "offset": [40, -25], "rect": [10, 60, 60, 50]},
        {"name": "deep", "document": str(folder / "photo16.png"), "prompt": "this photo is grainy"},
        {"name": "linear", "document": document, "prompt": NOISE, "precision": "FLOAT_LINEAR"},
        {"name": "refused", "document": document, "prompt": "add a dragon in the sky"},
        {"name": "group", "document": document, "prompt": NOISE, "group": "group"},
        {"name": "nested", "document": document, "prompt": NOISE, "group": "layer", "rect": [30, 30, 40, 40]},
        {"name": "scripted_strength", "document": document, "prompt": NOISE, "strength": 30},
        {"name": "dialog", "document": document, "dialog": {"stdout": HAZE_HALF, "exit": 0}},
        {"name": "repeat", "document": document, "last_values": True},  # Filters > Repeat: the dialog's choice
        {"name": "dialog_cancel", "document": document, "dialog": {"stdout": "", "exit": 1}},
    ]


def scenarios_without_worker(folder: Path) -> list[dict]:
    document = str(folder / "photo.png")
    return [
        {"name": "missing_worker", "document": document, "prompt": NOISE, "rect": [50, 40, 60, 30]},
        {"name": "no_prompt", "document": document, "prompt": "  "},
        {"name": "elsewhere", "document": document, "prompt": NOISE, "offset": [100, 0], "rect": [0, 0, 50, 50]},
    ]


@pytest.fixture(scope="module")
def gimp_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gimp-weights") / "untrained.safetensors"
    save_weights(untrained_model(), path, dtype=torch.float32)
    return path


@contextlib.contextmanager
def plugin_folders(folder: Path) -> Iterator[tuple[Path, Path]]:
    """The plugins' config and runtime folders, for this process (the worker it starts) and for GIMP."""
    config, runtime = folder / "textpromptir-config", folder / "textpromptir-runtime"
    saved = {name: os.environ.get(name) for name in ("TEXTPROMPTIR_CONFIG_DIR", "TEXTPROMPTIR_RUNTIME_DIR")}
    os.environ["TEXTPROMPTIR_CONFIG_DIR"], os.environ["TEXTPROMPTIR_RUNTIME_DIR"] = str(config), str(runtime)
    try:
        yield config, runtime
    finally:
        info = discovery.read_info(runtime / "worker.json")
        if info and discovery.process_alive(info.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, gimp_weights: Path) -> Iterator[dict]:
    """Both GIMP sessions' records by scenario name, their output folders, and the shared folder."""
    if not gimp_available():
        why = "needs the GIMP 3 chroot (sudo bash tests/gimp_chroot.sh) and root or password-less sudo"
        if gimp_required():
            pytest.fail(f"The GIMP tests are required here (CI or TEXTPROMPTIR_REQUIRE_GIMP) but this {why}.")
        pytest.skip(why)
    folder = tmp_path_factory.mktemp("gimp")
    folder.chmod(0o755)
    install_profile(folder)
    prompt_program = fake_prompt_program(folder)
    records: dict = {"folder": folder}
    with plugin_folders(folder) as (config, runtime):
        # The worker runs here: the chroot cannot run this environment's Python.
        settings = Settings(python=sys.executable, weights=str(gimp_weights), device="cpu", idle_timeout=300)
        connect(settings).close()
        # Inside GIMP, the project's Python is the stand-in that answers the prompt dialog.
        write_settings(config, str(prompt_program), str(gimp_weights), "cpu")
        environment = {"TEXTPROMPTIR_CONFIG_DIR": str(config), "TEXTPROMPTIR_RUNTIME_DIR": str(runtime)}
        for record in run_gimp(folder, scenarios(folder), environment, name="gimp"):
            records[record["name"]] = {**record, "out": folder / "gimp-out"}
    # No worker, and the project's Python (this one) cannot run inside the chroot.
    with plugin_folders(folder / "second") as (config, runtime):
        write_settings(config, sys.executable, str(gimp_weights), "cpu")
        environment = {"TEXTPROMPTIR_CONFIG_DIR": str(config), "TEXTPROMPTIR_RUNTIME_DIR": str(runtime)}
        for record in run_gimp(folder, scenarios_without_worker(folder), environment, name="second"):
            records[record["name"]] = {**record, "out": folder / "second-out"}
    yield records


@pytest.fixture(scope="module")
def engine(gimp_weights: Path) -> Restorer:
    return Restorer.load(gimp_weights, device="cpu")


def record_of(session: dict, name: str) -> dict:
    record = session[name]
    assert "driver_error" not in record, record["driver_error"]
    return record


def raw_rgba(path: Path, width: int, height: int) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), np.float32).reshape(height, width, 4)


def layer_mask(record: dict) -> np.ndarray | None:
    """The selection over the source layer (0-255), or None without a selection."""
    path = record["out"] / f"{record['name']}.mask.raw"
    if not path.exists():
        return None
    canvas_width, canvas_height = record["canvas"]
    canvas = np.frombuffer(path.read_bytes(), np.uint8).reshape(canvas_height, canvas_width)
    x, y, width, height = record["source"]
    mask = np.zeros((height, width), np.uint8)
    top, left = max(y, 0), max(x, 0)
    bottom, right = min(y + height, canvas_height), min(x + width, canvas_width)
    mask[top - y : bottom - y, left - x : right - x] = canvas[top:bottom, left:right]
    return mask


def expected_layer(engine: Restorer, record: dict, prompt: str, strength: float = 1.0) -> tuple[list[int], np.ndarray]:
    """Where the restored layer must lie ([x, y, width, height] on the canvas) and what it must hold."""
    x, y, width, height = record["source"]
    source = raw_rgba(record["out"] / f"{record['name']}.source.raw", width, height)
    mask = layer_mask(record)
    if mask is None:
        rows, cols = slice(0, height), slice(0, width)
    else:
        selected_rows, selected_cols = np.nonzero(mask)
        rows = slice(max(selected_rows.min() - CONTEXT, 0), min(selected_rows.max() + 1 + CONTEXT, height))
        cols = slice(max(selected_cols.min() - CONTEXT, 0), min(selected_cols.max() + 1 + CONTEXT, width))
    crop = np.ascontiguousarray(source[rows, cols])
    restored = blend(crop, engine.restore(crop, prompt), strength).astype(np.float64)
    if mask is not None:
        restored[..., 3] *= mask[rows, cols] / 255.0
    if not record["precision"].startswith(("float", "double", "half")):
        restored = np.clip(restored, 0.0, 1.0)  # an integer layer holds 0..1
    place = [x + cols.start, y + rows.start, cols.stop - cols.start, rows.stop - rows.start]
    return place, restored


def check_restored_pixels(session: dict, engine: Restorer, name: str, prompt: str, strength: float = 1.0) -> None:
    record = record_of(session, name)
    place, expected = expected_layer(engine, record, prompt, strength)
    assert record["restored"][1:] == place
    result = raw_rgba(record["out"] / f"{name}.result.raw", place[2], place[3]).astype(np.float64)
    # what a GIMP layer of this precision can hold: 8 bits round to 1/255, 16 bits to 1/65535
    tolerance = {"u8": 0.51 / 255, "u16": 0.51 / 65535}.get(record["precision"].split("-")[0], 0.0) + 2e-5
    alpha_error = np.abs(result[..., 3] - expected[..., 3]).max()
    assert alpha_error <= tolerance, f"alpha differs by {alpha_error}"
    painted = expected[..., 3] > 0
    assert painted.any()
    difference = np.abs(result[..., :3] - expected[..., :3])[painted].max()
    assert difference <= tolerance, f"restored pixels differ from the engine's by {difference * 255:.2f} levels"
    x, y, width, height = record["source"]
    source = raw_rgba(record["out"] / f"{name}.source.raw", width, height)
    rows = slice(place[1] - y, place[1] - y + place[3])
    cols = slice(place[0] - x, place[0] - x + place[2])
    changed = np.abs(result[..., :3] - source[rows, cols, :3])[painted].mean()
    assert changed > 2 * strength / 255, "the layer holds the input, not a restoration"


def names(layers: list) -> list[str]:
    return [layer[0] for layer in layers]


@pytest.mark.parametrize(
    ("name", "prompt", "strength"),
    [
        ("full", NOISE, 1.0),
        ("rectangle", "remove the rain", 1.0),
        ("ellipse", NOISE, 1.0),
        ("offset", NOISE, 1.0),
        ("deep", "this photo is grainy", 1.0),
        ("linear", NOISE, 1.0),
        ("scripted_strength", NOISE, 0.3),
        ("dialog", "remove the haze", 0.5),
        ("repeat", "remove the haze", 0.5),
    ],
)
def test_restored_layer_is_added_above_the_source(
    session: dict, engine: Restorer, name: str, prompt: str, strength: float
) -> None:
    record = record_of(session, name)
    assert record["status"] == "success", record.get("message")
    before = record["layers_before"]
    assert record["layers_after"] == [record["restored"], *before]
    assert record["restored"][0] == f"Restored: {prompt}"
    assert record["restored_position"] == 0
    assert record["xcf_layers"] == record["layers_after"]
    assert record["source_unchanged"]
    check_restored_pixels(session, engine, name, prompt, strength)


def test_any_precision_is_read_and_written(session: dict) -> None:
    assert record_of(session, "full")["precision"] == "u8-non-linear"
    assert record_of(session, "deep")["precision"] == "u16-non-linear"
    assert record_of(session, "linear")["precision"] == "float-linear"


def test_selection_limits_the_painted_area(session: dict) -> None:
    record = record_of(session, "ellipse")
    x, y, width, height = record["restored"][1:]
    result = raw_rgba(record["out"] / "ellipse.result.raw", width, height)
    mask = layer_mask(record)[y : y + height, x : x + width]
    assert np.all(result[mask == 0, 3] == 0) and np.all(result[mask == 255, 3] == 1)
    assert mask[10 + 35 - y, 20 + 45 - x] == 255 and mask[10 - y, 20 - x] == 0  # an ellipse, not its bounds


def test_offset_layer_is_restored_where_it_lies(session: dict) -> None:
    record = record_of(session, "offset")
    assert record["layers_before"][0][1:] == [40, -25, 160, 120]
    # selected: canvas x 10..70, y 60..110, of which the layer holds x 40..70, y 60..95; plus the margin
    assert record["restored"][1:] == [40, 60 - CONTEXT, 30 + CONTEXT, 35 + CONTEXT]
    x, y, width, height = record["restored"][1:]
    result = raw_rgba(record["out"] / "offset.result.raw", width, height)
    assert np.all(result[: 60 - y, :, 3] == 0) and np.all(result[:, 70 - x :, 3] == 0)
    assert np.all(result[60 - y :, : 70 - x, 3] == 1)


def test_refused_prompt_explains_and_changes_nothing(session: dict) -> None:
    record = record_of(session, "refused")
    assert record["status"] == "execution-error"
    assert "Nothing to restore" in record["message"] and "rain" in record["message"]
    assert "log" not in record["message"]  # a prompt to rephrase, not a crash to investigate
    assert record["layers_after"] == record["layers_before"] == record["xcf_layers"]
    assert record["source_unchanged"]


def test_group_layer_is_refused(session: dict) -> None:
    record = record_of(session, "group")
    assert record["status"] == "execution-error"
    assert "layer groups have no pixels" in record["message"]
    assert record["layers_after"] == record["layers_before"]


def test_layer_in_a_group_gets_its_restoration_inside_the_group(session: dict, engine: Restorer) -> None:
    record = record_of(session, "nested")
    assert record["status"] == "success", record.get("message")
    assert names(record["layers_after"]) == names(record["xcf_layers"]) == ["Group"]
    assert record["siblings_after"] == [f"Restored: {NOISE}", "Background"]
    check_restored_pixels(session, engine, "nested", NOISE)


def test_selection_off_the_layer_is_refused(session: dict) -> None:
    record = record_of(session, "elsewhere")
    assert record["status"] == "execution-error"
    assert "selection does not touch this layer" in record["message"]
    assert record["layers_after"] == record["layers_before"] and record["source_unchanged"]


def test_dialog_is_the_projects_prompt_program(session: dict) -> None:
    arguments = (session["folder"] / "prompt-args.txt").read_text().splitlines()
    assert arguments[:3] == ["-m", "textpromptir_client.prompt", "--host-pid"]
    assert int(arguments[3]) > 1  # GIMP's pid, so that the worker lives as long as GIMP
    assert arguments[4:6] == ["--subject", "Layer “Background”"]
    # the area's pixels for the preview, as the plug-in read them: 160 x 120 float RGBA, no selection
    assert arguments[6] == "--pixels"
    assert " ".join(arguments[8:]) == "--width 160 --height 120 --format f32 --order RGBA"
    assert not Path(arguments[7]).exists()  # the temporary folder is gone
    record = record_of(session, "dialog_cancel")
    assert record["status"] == "cancel" and "message" not in record
    assert record["layers_after"] == record["layers_before"] and record["source_unchanged"]


def test_missing_worker_is_an_error_that_says_what_to_do(session: dict) -> None:
    record = record_of(session, "missing_worker")
    assert record["status"] == "execution-error"
    assert "engine is not installed" in record["message"] and sys.executable in record["message"]
    assert "run:\n\nbash installer/setup.sh\n\nthen try again" in record["message"]  # the exact command
    assert record["layers_after"] == record["layers_before"] == record["xcf_layers"]
    assert record["source_unchanged"]


def test_a_script_must_give_a_prompt(session: dict) -> None:
    record = record_of(session, "no_prompt")
    assert record["status"] == "calling-error" and "Give a prompt" in record["message"]
    assert record["layers_after"] == record["layers_before"]


def test_installed_plug_in_is_executable_with_the_client_beside_it(tmp_path: Path) -> None:
    script, client, wire = install_gimp(tmp_path / "plug-ins")
    assert script == tmp_path / "plug-ins" / "textpromptir_gimp" / "textpromptir_gimp.py"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!/usr/bin/env python3")
    assert (client / "client.py").is_file() and not (client / "__pycache__").exists()
    assert (wire / "frames.py").is_file() and wire.parent == client.parent
    (client / "stale.py").write_text("")
    install_gimp(tmp_path / "plug-ins")  # an upgrade replaces the old files
    assert not (client / "stale.py").exists()


def test_prompt_program_previews_and_prints_the_accepted_prompt(
    gimp_weights: Path, engine: Restorer, tmp_path: Path
) -> None:
    """The dialog program GIMP runs, here for real: PyQt6 offscreen, live feedback and a preview from a worker.

    It previews the area GIMP hands it (float RGBA in a file), the strength slider moves, Restore prints
    the prompt and strength; the restoration with them matches the preview on its crop, blended exactly.
    """
    rgb = photo_like(600, 560, seed=9) / 255.0
    area = np.concatenate([rgb, np.ones((600, 560, 1))], axis=-1).astype(np.float32)
    (tmp_path / "area.raw").write_bytes(area.tobytes())
    with plugin_folders(tmp_path):
        settings = Settings(python=sys.executable, weights=str(gimp_weights), device="cpu", history=["remove the rain"])
        settings.save()
        arguments = ["--host-pid", str(os.getpid()), "--subject", "Layer “x”", "--pixels", str(tmp_path / "area.raw")]
        arguments += ["--width", "560", "--height", "600", "--format", "f32"]
        program = subprocess.run(
            [sys.executable, "-c", CLICK_RESTORE, *arguments],
            capture_output=True,
            text=True,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PREVIEW_OUT": str(tmp_path / "preview")},
            timeout=300,
            check=False,
        )
        assert program.returncode == 0, program.stderr
        assert json.loads(program.stdout.strip().splitlines()[-1]) == {"prompt": "remove the haze", "strength": 0.55}
        assert Settings.load().history[:2] == ["remove the haze", "remove the rain"]
        assert Settings.load().strength == 55
        with connect(settings) as session:
            image = Pixels(area.tobytes(), 560, 600, "f32")
            layer = session.restore(image, "remove the haze", strength=0.55)
    layer = np.frombuffer(bytes(layer.pixels), np.float32).reshape(600, 560, 4)
    x, y, width, height = json.loads((tmp_path / "preview.json").read_text())
    preview = np.frombuffer((tmp_path / "preview").read_bytes(), np.float32).reshape(height, width, 4)
    assert min(width, height) >= 256
    assert psnr(preview[..., :3], layer[y : y + height, x : x + width, :3], peak=1.0) >= 45
    assert np.array_equal(layer, blend(area, engine.restore(area, "remove the haze"), 0.55))


# Run the dialog program: type a prompt, wait for its preview, move the strength, wait for that preview,
# write it down (pixels and place), press Restore.
CLICK_RESTORE = """
import json, os, sys
from textpromptir_client import prompt
from textpromptir_client.qt import QtCore, QtWidgets

seen = {}

def click():
    for widget in QtWidgets.QApplication.topLevelWidgets():
        if widget.objectName() != "textpromptir_prompt_dialog" or not widget.isVisible():
            continue
        slider = widget.findChild(QtWidgets.QSlider, "strength")
        shot = widget.shot
        if widget.prompt() != "remove the haze":
            widget.field.setEditText("remove the haze")
        elif shot is not None and "first" not in seen:
            assert widget.findChild(QtWidgets.QLabel, "subject").text() == "Layer “x”"
            assert widget.findChild(QtWidgets.QLabel, "preview").pixmap() is not None
            seen["first"] = shot
            slider.setValue(55)
        elif "first" in seen and shot is not seen["first"] and shot.generation == widget.runner.generation:
            out = os.environ["PREVIEW_OUT"]
            with open(out, "wb") as pixels:
                pixels.write(bytes(shot.restored.pixels))
            with open(out + ".json", "w") as place:
                json.dump([shot.x, shot.y, shot.restored.width, shot.restored.height], place)
            widget.restore_button.click()
            return
    QtCore.QTimer.singleShot(100, click)

app = QtWidgets.QApplication(sys.argv[:1])  # kept: the dialog runs in this application
QtCore.QTimer.singleShot(100, click)
sys.exit(prompt.main(sys.argv[1:]))
"""
