"""The preview: one tile of the full run's grid, cropped inside its core, equals the full run there; strength blends."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from textpromptir.engine import tiling
from textpromptir.engine.restore import Restorer, blend
from textpromptir.errors import ImageError
from textpromptir.metrics import psnr

from conftest import photo_like

PROMPT = "remove the noise"


@pytest.mark.parametrize("length", [200, 512, 600, 1000, 1700, 6001])
def test_preview_crop_lies_where_only_its_tile_is_blended(length: int) -> None:
    spans = tiling.spans(length, 512, tiling.OVERLAP, 8)
    for centre in range(0, length, 37):
        tile, crop = tiling.preview_crop(length, length, (centre, centre), 320, 512, tiling.OVERLAP, 8)
        assert (tile.top, tile.bottom) in spans and tile.top <= crop.top and crop.bottom <= tile.bottom
        assert min(320, length) >= crop.bottom - crop.top >= min(256, length)
        others = [span for span in spans if span != (tile.top, tile.bottom)]
        assert all(stop <= crop.top or start >= crop.bottom for start, stop in others)
        weights = tiling.blend_weights(tile, length, length, tiling.OVERLAP)[crop.rows, crop.cols]
        assert np.all(weights == 1.0)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return photo_like(600, 560, seed=5)


@pytest.fixture(scope="module")
def full_run(restorer: Restorer, photo: np.ndarray) -> np.ndarray:
    return restorer.restore(photo, PROMPT)


@pytest.mark.parametrize("centre", [(280, 300), (0, 0), (559, 599)])
def test_preview_matches_the_full_run_on_its_crop(
    restorer: Restorer, photo: np.ndarray, full_run: np.ndarray, centre: tuple[int, int]
) -> None:
    crop, pixels = restorer.preview(photo, PROMPT, centre)
    assert pixels.shape[:2] == (crop.bottom - crop.top, crop.right - crop.left)
    assert min(pixels.shape[:2]) >= 256
    final = full_run[crop.rows, crop.cols]
    assert psnr(pixels, final) >= 45
    assert np.abs(pixels.astype(int) - final.astype(int)).max() <= 1
    assert np.abs(final.astype(int) - photo[crop.rows, crop.cols].astype(int)).mean() > 2  # it did restore


def test_a_crop_restored_on_its_own_does_not_match(restorer: Restorer, photo: np.ndarray, full_run: np.ndarray) -> None:
    """Why the preview restores the whole tile: the backbone sees all of it, so less context changes the result."""
    crop, _ = restorer.preview(photo, PROMPT, (280, 300))
    alone = restorer.restore(np.ascontiguousarray(photo[crop.rows, crop.cols]), PROMPT)
    assert psnr(alone, full_run[crop.rows, crop.cols]) < 45


def test_a_window_around_the_centre_gives_the_same_preview(restorer: Restorer, photo: np.ndarray) -> None:
    crop, pixels = restorer.preview(photo, PROMPT, (400, 420))
    window = photo[60:, 90:]
    same_crop, same = restorer.preview(window, PROMPT, (400, 420), origin=(90, 60), shape=photo.shape[:2])
    assert same_crop == crop and np.array_equal(same, pixels)
    with pytest.raises(ImageError, match="The preview needs the pixels"):
        restorer.preview(photo[300:], PROMPT, (400, 420), origin=(0, 300), shape=photo.shape[:2])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_strength_blends_restored_and_original_exactly(restorer: Restorer, dtype: type) -> None:
    scale = {np.uint8: 1, np.uint16: 257, np.float32: 1 / 255}[dtype]
    alpha = np.full((96, 128, 1), 200 * scale)
    image = np.concatenate([photo_like(96, 128, seed=2).astype(np.float64) * scale, alpha], axis=-1).astype(dtype)
    restored = restorer.restore(image, PROMPT)
    for strength in (0.0, 0.37, 0.6):
        expected = restored[..., :3].astype(np.float64) * strength + image[..., :3].astype(np.float64) * (1 - strength)
        if dtype != np.float32:
            expected = np.rint(expected)
        blended = restorer.restore(image, PROMPT, strength=strength)
        assert blended.dtype == dtype
        assert np.array_equal(blended[..., :3], expected.astype(dtype)) and np.array_equal(
            blended[..., 3], image[..., 3]
        )
    assert np.array_equal(restorer.restore(image, PROMPT, strength=0.0), image)
    with pytest.raises(ValueError, match="strength"):
        blend(image, restored, 1.5)


def test_preview_applies_the_strength(restorer: Restorer, photo: np.ndarray, full_run: np.ndarray) -> None:
    crop, pixels = restorer.preview(photo, PROMPT, (280, 300), strength=0.6)
    expected = blend(photo, full_run, 0.6)[crop.rows, crop.cols]
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1


def test_cores_of_neighbours_never_overlap() -> None:
    for length in (513, 1000, 4000):
        spans = tiling.spans(length, 512, tiling.OVERLAP, 8)
        for (_, stop), (start, _) in itertools.pairwise(tiling.cores(spans)):
            assert stop <= start


@pytest.fixture(scope="module")
def worker_settings(weights_file, tmp_path_factory: pytest.TempPathFactory):
    """A real `textpromptir serve` worker, in a runtime folder of its own, and the settings that reach it."""
    import os
    import sys

    from textpromptir_client.client import connect
    from textpromptir_client.settings import Settings
    from textpromptir_wire import discovery

    folder = tmp_path_factory.mktemp("preview-runtime")
    saved = {name: os.environ.get(name) for name in ("TEXTPROMPTIR_RUNTIME_DIR", "TEXTPROMPTIR_CONFIG_DIR")}
    os.environ["TEXTPROMPTIR_RUNTIME_DIR"], os.environ["TEXTPROMPTIR_CONFIG_DIR"] = str(folder), str(folder)
    settings = Settings(python=sys.executable, weights=str(weights_file), device="cpu", idle_timeout=120)
    connect(settings, host_pid=os.getpid()).close()
    yield settings
    info = discovery.read_info(folder / "worker.json")
    if info and discovery.process_alive(info.pid):
        os.kill(info.pid, 9)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.mark.slow
def test_dialog_preview_is_what_restore_paints(worker_settings, restorer: Restorer) -> None:
    """The dialog under PyQt6 with a real worker: type, preview, move the strength and the crop, Restore."""
    import os
    import time

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    qt = pytest.importorskip("textpromptir_client.qt")
    from textpromptir_client.client import Image, PromptChecker, connect
    from textpromptir_client.dialog import PromptDialog
    from textpromptir_client.preview import RawArea

    app = qt.QtWidgets.QApplication.instance() or qt.QtWidgets.QApplication([])
    image = np.concatenate([photo_like(600, 560, seed=7), np.full((600, 560, 1), 255, np.uint8)], axis=-1)
    area = RawArea(image.tobytes(), 560, 600, "u8", "RGBA")
    checker = PromptChecker(worker_settings, host_pid=os.getpid())

    def wait_until(condition, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, "the dialog did not update in time"
            app.processEvents()
            time.sleep(0.01)

    dialog = PromptDialog(
        worker_settings, checker.understand, checker.device, area=area, open_session=lambda: connect(worker_settings)
    )
    dialog.show()
    dialog.field.setEditText("remove the noise")
    wait_until(lambda: dialog.shot is not None)
    assert dialog.findChild(qt.QtWidgets.QLabel, "preview").pixmap() is not None
    first = dialog.shot
    slider = dialog.findChild(qt.QtWidgets.QSlider, "strength")
    for value in (90, 70, 45):  # dragged: only the last one is previewed
        slider.setValue(value)
    dialog.thumbnail.clicked.emit(10, 10)  # the top left corner of the thumbnail
    wait_until(lambda: dialog.shot is not first and dialog.shot.generation == dialog.runner.generation)
    shot = dialog.shot
    assert (shot.x, shot.y) != (first.x, first.y) and shot.x < 100 and shot.y < 100
    assert dialog.runner.generation - first.generation <= 2  # the slider's steps were dropped, not queued
    dialog.restore_button.click()
    assert dialog.strength() == 0.45
    with connect(worker_settings) as session:
        layer = session.restore(Image(image.tobytes(), 560, 600, "u8"), dialog.prompt(), strength=dialog.strength())
    layer = np.frombuffer(bytes(layer.pixels), np.uint8).reshape(600, 560, 4)
    preview = np.frombuffer(bytes(shot.restored.pixels), np.uint8).reshape(shot.restored.height, shot.restored.width, 4)
    final = layer[shot.y : shot.y + shot.restored.height, shot.x : shot.x + shot.restored.width]
    assert psnr(preview[..., :3], final[..., :3]) >= 45
    full = restorer.restore(image, "remove the noise")
    assert np.array_equal(layer, blend(image, full, 0.45))  # the blend is exact
    checker.close()
