"""The Krita plugin inside the real Krita 5 (under Xvfb), driven through its menu action and dialogs.

One Krita session runs every scenario (tests/krita holds the driver plugin);
each test then checks what the user would see: the layer stack in Krita and
in the saved .kra, the restored layer's pixels against the engine run here
on the same pixels, the message shown, and that one undo removes the layer.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from PIL import Image

from textpromptir.engine.images import encode_png16
from textpromptir.engine.restore import Restorer, blend
from textpromptir.metrics import psnr

from conftest import photo_like
from krita_host import krita_available, run_krita

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not krita_available(), reason="needs krita and xvfb-run (apt-get install krita xvfb xauth)"),
]
CONTEXT = 32  # the plugin's margin around a selection
DTYPES = {"U8": np.uint8, "U16": np.uint16, "F16": np.float16, "F32": np.float32}


def scenarios(folder: Path) -> list[dict]:
    photo = photo_like(120, 160)
    Image.fromarray(photo).save(folder / "photo.png")
    (folder / "photo16.png").write_bytes(encode_png16(photo.astype(np.uint16) * 257 + 100))
    Image.fromarray(photo_like(1024, 1024, seed=3)).save(folder / "large.png")
    Image.fromarray(photo_like(600, 700, seed=4)).save(folder / "tiles.png")
    rgba = np.concatenate([photo / 255.0, np.ones((120, 160, 1))], axis=-1).astype(np.float32)
    (folder / "float.raw").write_bytes(rgba.tobytes())
    noise = "remove the noise"
    return [
        {"name": "full", "document": str(folder / "photo.png"), "prompt": noise},
        {
            "name": "rectangle",
            "document": str(folder / "photo.png"),
            "prompt": "remove the rain",
            "rect": [50, 40, 60, 30],
        },
        {"name": "ellipse", "document": str(folder / "photo.png"), "prompt": noise, "ellipse": [20, 10, 90, 70]},
        {"name": "offset", "document": str(folder / "photo.png"), "prompt": noise, "offset": [40, -25]},
        {"name": "deep", "document": str(folder / "photo16.png"), "prompt": "this photo is grainy"},
        {
            "name": "float",
            "create": {"width": 160, "height": 120, "depth": "F32", "raw": str(folder / "float.raw")},
            "prompt": noise,
        },
        {"name": "refused", "document": str(folder / "photo.png"), "prompt": "add a dragon in the sky"},
        {"name": "group", "document": str(folder / "photo.png"), "prompt": noise, "group": True},
        {"name": "cancel", "document": str(folder / "large.png"), "prompt": noise, "then": "cancel"},
        {"name": "killed", "document": str(folder / "large.png"), "prompt": noise, "then": "kill_worker"},
        {"name": "after_crash", "document": str(folder / "photo.png"), "prompt": noise},
        # last: they leave strength 40 % as the remembered one
        {"name": "preview", "document": str(folder / "tiles.png"), "prompt": noise, "strength": 40, "click": [8, 8]},
        {"name": "repeat", "document": str(folder / "tiles.png"), "repeat": True},
    ]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, weights_file: Path) -> tuple[dict[str, dict], Path]:
    folder = tmp_path_factory.mktemp("krita")
    records = run_krita(folder, scenarios(folder), sys.executable, str(weights_file))
    return {record["name"]: record for record in records}, folder / "out"


@pytest.fixture(scope="module")
def engine(weights_file: Path) -> Restorer:
    return Restorer.load(weights_file, device="cpu")


def record_of(session: tuple[dict[str, dict], Path], name: str) -> dict:
    record = session[0][name]
    assert "driver_error" not in record, record["driver_error"]
    return record


def canvas_rgba(path: Path, record: dict) -> np.ndarray:
    """Raw layer pixels as Krita gives them, as (H, W, 4) RGBA."""
    width, height = record["canvas"]
    pixels = np.frombuffer(path.read_bytes(), DTYPES[record["depth"]]).reshape(height, width, 4)
    return pixels[..., [2, 1, 0, 3]] if record["depth"] in ("U8", "U16") else pixels


def bounding_box(where: np.ndarray, margin: int = 0) -> tuple[slice, slice]:
    rows, cols = np.nonzero(where)
    height, width = where.shape
    top, bottom = max(rows.min() - margin, 0), min(rows.max() + 1 + margin, height)
    left, right = max(cols.min() - margin, 0), min(cols.max() + 1 + margin, width)
    return slice(top, bottom), slice(left, right)


def expected_layer(engine: Restorer, source: np.ndarray, mask: np.ndarray | None, prompt: str) -> np.ndarray:
    """What the restored layer must hold: the engine's result on the same pixels, painted where selected."""
    area = bounding_box(mask > 0, CONTEXT) if mask is not None else bounding_box(source[..., 3] > 0)
    crop = source[area]
    restored = engine.restore(crop.astype(np.float32) if crop.dtype == np.float16 else crop, prompt)
    restored = restored.astype(np.float64)
    if mask is not None:
        restored[..., 3] *= mask[area] / 255.0
    layer = np.zeros(source.shape, np.float64)
    layer[area] = restored
    return layer


def check_restored_pixels(session: tuple[dict[str, dict], Path], engine: Restorer, name: str, prompt: str) -> None:
    record, out = record_of(session, name), session[1]
    source = canvas_rgba(out / f"{name}.source.raw", record)
    mask_file = out / f"{name}.mask.raw"
    mask = np.frombuffer(mask_file.read_bytes(), np.uint8).reshape(source.shape[:2]) if mask_file.exists() else None
    result = canvas_rgba(out / f"{name}.result.raw", record).astype(np.float64)
    expected = expected_layer(engine, source, mask, prompt)
    full_scale = {"U8": 255, "U16": 65535}.get(record["depth"], 1.0)
    alpha_error = np.abs(result[..., 3] - expected[..., 3]).max() / full_scale
    assert alpha_error <= 1 / 255
    painted = expected[..., 3] > 0
    assert painted.any()
    difference = np.abs(result[..., :3] - expected[..., :3])[painted].max() / full_scale
    assert difference <= 1.5 / 255, f"restored pixels differ from the engine's by {difference * 255:.1f} levels"
    changed = np.abs(result[..., :3] - source[..., :3].astype(np.float64))[painted].mean() / full_scale
    assert changed > 2 / 255, "the layer holds the input, not a restoration"


def layer_names(layers: list) -> list[str]:
    return [layer[0] for layer in layers]


def kra_layer_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as kra:
        root = ElementTree.fromstring(kra.read("maindoc.xml"))
    layers = next(element for element in root.iter() if element.tag.endswith("layers"))
    return [layer.get("name") for layer in layers if layer.tag.endswith("layer")]


@pytest.mark.parametrize(
    ("name", "prompt", "understood"),
    [
        ("full", "remove the noise", "noise"),
        ("rectangle", "remove the rain", "rain"),
        ("ellipse", "remove the noise", "noise"),
        ("offset", "remove the noise", "noise"),
        ("deep", "this photo is grainy", "noise"),
        ("float", "remove the noise", "noise"),
        ("after_crash", "remove the noise", "noise"),
    ],
)
def test_restored_layer_is_added_above_the_source_and_undoes_in_one_step(
    session: tuple[dict[str, dict], Path], engine: Restorer, name: str, prompt: str, understood: str
) -> None:
    record = record_of(session, name)
    assert record["feedback"].startswith(f"Understood: {understood}")
    assert record["device"] == "Engine: cpu"
    source_name = record["layers_before"][0][0]
    assert layer_names(record["layers_after"]) == [f"Restored: {prompt}", *layer_names(record["layers_before"])]
    assert record["restored_depth"] == record["depth"]
    assert kra_layer_names(session[1] / f"{name}.kra")[:2] == [f"Restored: {prompt}", source_name]
    assert record["layers_after_undo"] == record["layers_before"]
    assert "message" not in record
    check_restored_pixels(session, engine, name, prompt)


def test_selection_limits_the_painted_area(session: tuple[dict[str, dict], Path]) -> None:
    record, out = record_of(session, "ellipse"), session[1]
    result = canvas_rgba(out / "ellipse.result.raw", record)
    mask = np.frombuffer((out / "ellipse.mask.raw").read_bytes(), np.uint8).reshape(result.shape[:2])
    assert np.all(result[mask == 0, 3] == 0) and np.all(result[mask == 255, 3] == 255)
    assert mask[10 + 35, 20 + 45] == 255 and mask[10, 20] == 0  # an ellipse, not its bounding box


def test_offset_layer_is_restored_where_it_lies(session: tuple[dict[str, dict], Path]) -> None:
    record, out = record_of(session, "offset"), session[1]
    result = canvas_rgba(out / "offset.result.raw", record)
    assert record["layers_before"][0][3] == [40, -25, 160, 120]  # the moved layer, partly off the canvas
    assert record["layers_after"][0][3] == [40, 0, 120, 95]  # its restoration, on the canvas only
    assert np.all(result[:, :40, 3] == 0) and np.all(result[95:, :, 3] == 0)
    assert np.all(result[:95, 40:, 3] == 255)


def test_refused_prompt_explains_and_changes_nothing(session: tuple[dict[str, dict], Path]) -> None:
    record = record_of(session, "refused")
    assert "Nothing to restore" in record["feedback"] and "rain" in record["feedback"]
    assert record["restore_enabled"] is False
    assert record["layers_after"] == record["layers_before"]


def test_group_layer_is_refused_before_the_dialog(session: tuple[dict[str, dict], Path]) -> None:
    record = record_of(session, "group")
    assert "feedback" not in record  # no prompt dialog was shown
    assert "Select a paint layer" in record["message"] and "grouplayer" in record["message"]
    assert record["layers_after"] == record["layers_before"]


def test_cancel_leaves_the_document_as_it_was(session: tuple[dict[str, dict], Path]) -> None:
    record = record_of(session, "cancel")
    assert "message" not in record  # cancelling is not an error
    assert record["layers_after"] == record["layers_before"]


def test_killed_worker_is_reported_and_the_next_restore_works(session: tuple[dict[str, dict], Path]) -> None:
    record = record_of(session, "killed")
    assert "worker stopped answering" in record["message"] and "Try again" in record["message"]
    assert "Worker log:" in record["details"]
    assert record["layers_after"] == record["layers_before"]
    assert "Restored: remove the noise" in layer_names(record_of(session, "after_crash")["layers_after"])


def test_preview_is_what_restore_paints_and_the_strength_blends_exactly(
    session: tuple[dict[str, dict], Path], engine: Restorer
) -> None:
    record, out = record_of(session, "preview"), session[1]
    assert record["device_at_first"].startswith("Engine: loading the model…")
    assert record["preview_shown"] and record["strength_at_first"] == 100
    assert record["strength_label"].startswith("40 %")
    x, y, width, height = record["preview"]
    assert [x, y] != record["first_preview"] and x < 120 and y < 120  # the click on the thumbnail moved it
    assert min(width, height) >= 256
    source = canvas_rgba(out / "preview.source.raw", record)
    result = canvas_rgba(out / "preview.result.raw", record)
    preview = np.frombuffer((out / "preview.preview.raw").read_bytes(), np.uint8).reshape(height, width, 4)
    assert psnr(preview[..., [2, 1, 0]], result[y : y + height, x : x + width, :3]) >= 45
    assert np.array_equal(result, blend(source, engine.restore(source, "remove the noise"), 0.4))
    assert layer_names(record["layers_after"])[0] == "Restored: remove the noise"


def test_repeat_runs_the_last_prompt_and_strength_without_the_dialog(
    session: tuple[dict[str, dict], Path], engine: Restorer
) -> None:
    record, out = record_of(session, "repeat"), session[1]
    assert "feedback" not in record and "message" not in record  # no dialog, no error
    assert layer_names(record["layers_after"]) == ["Restored: remove the noise", *layer_names(record["layers_before"])]
    source = canvas_rgba(out / "repeat.source.raw", record)
    result = canvas_rgba(out / "repeat.result.raw", record)
    assert np.array_equal(result, blend(source, engine.restore(source, "remove the noise"), 0.4))
