"""The command line: outputs, and one clear line with its own exit code per error."""

import os
import resource
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from textpromptir.cli import main
from textpromptir.engine.images import encode_png16, read_photo
from textpromptir.engine.weights import save_weights

from conftest import photo_like, untrained_model


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo_like(40, 60)).save(path)
    return path


def run(*args) -> int:
    return main([str(arg) for arg in args])


def error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("textpromptir: error: ")
    return lines[0]


def test_restores_beside_the_input_by_default(photo, weights_file, capsys):
    assert run("restore", photo, "-p", "remove the noise", "--weights", weights_file) == 0
    out = photo.with_name("photo.restored.png")
    with Image.open(out) as image:
        restored = np.asarray(image)
    assert restored.shape == (40, 60, 3)
    assert not np.array_equal(restored, photo_like(40, 60))  # the network did something
    assert "wrote" in capsys.readouterr().err


def test_several_inputs_go_to_an_output_folder(tmp_path, photo, weights_file):
    second = tmp_path / "second.jpg"
    Image.fromarray(photo_like(30, 20)).save(second)
    assert (
        run("restore", photo, second, "-p", "denoise", "--weights", weights_file, "--out-dir", tmp_path / "out", "-q")
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["photo.png", "second.jpg"]


def test_sixteen_bit_png_stays_sixteen_bit(tmp_path, weights_file):
    pixels = (photo_like(24, 32).astype(np.uint16) * 257) ^ 0x55  # low bytes that 8 bits would lose
    source = tmp_path / "deep.png"
    source.write_bytes(encode_png16(pixels))
    assert run("restore", source, "-p", "denoise", "--weights", weights_file, "-o", tmp_path / "out.png", "-q") == 0
    restored = read_photo(tmp_path / "out.png").pixels
    assert restored.dtype == np.uint16 and np.any(restored % 257 != 0)


def test_tile_option_is_used(weights_file, tmp_path, capsys):
    source = tmp_path / "wide.png"
    Image.fromarray(photo_like(100, 150)).save(source)
    assert (
        run("restore", source, "-p", "denoise", "--weights", weights_file, "--tile", "64", "-o", tmp_path / "t.png")
        == 0
    )
    assert "12/12 tiles" in capsys.readouterr().err  # 3 rows x 4 columns of tiles of at most 64 px


@pytest.mark.parametrize("tile", ["32", "-5", "big"])
def test_tile_option_is_checked(photo, weights_file, tile, capsys):
    with pytest.raises(SystemExit) as stop:
        run("restore", photo, "-p", "denoise", "--weights", weights_file, "--tile", tile)
    assert stop.value.code == 2
    assert "0 (no tiling) or at least 64" in capsys.readouterr().err


def test_missing_file(tmp_path, weights_file, capsys):
    assert run("restore", tmp_path / "nope.png", "-p", "denoise", "--weights", weights_file) == 3
    assert "nope.png: no such file" in error_line(capsys)


def test_unreadable_file(tmp_path, weights_file, capsys):
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"\xff\xd8 not really a jpeg")
    assert run("restore", junk, "-p", "denoise", "--weights", weights_file) == 3
    assert "junk.jpg" in error_line(capsys)


def test_unsupported_mode(tmp_path, weights_file, capsys):
    cmyk = tmp_path / "print.jpg"
    Image.new("CMYK", (16, 16)).save(cmyk)
    assert run("restore", cmyk, "-p", "denoise", "--weights", weights_file) == 3
    assert "CMYK images are not supported; convert it to RGB" in error_line(capsys)


@pytest.mark.parametrize("prompt", ["", "   "])
def test_empty_prompt(photo, weights_file, prompt, capsys):
    assert run("restore", photo, "-p", prompt, "--weights", weights_file) == 2
    assert "prompt is empty" in error_line(capsys)


def test_weights_missing(photo, tmp_path, capsys):
    assert run("restore", photo, "-p", "denoise", "--weights", tmp_path / "none.safetensors") == 4
    assert "Weights not found" in error_line(capsys)


def test_weights_corrupt(photo, tmp_path, weights_file, capsys):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"\x00" * 64 + weights_file.read_bytes()[64:20000])
    assert run("restore", photo, "-p", "denoise", "--weights", corrupt) == 4
    assert "not a readable safetensors file" in error_line(capsys)


def test_output_must_not_overwrite_the_input(photo, weights_file, capsys):
    assert run("restore", photo, "-p", "denoise", "--weights", weights_file, "-o", photo) == 2
    assert "overwrite its input" in error_line(capsys)


def test_one_output_file_for_one_input(photo, weights_file, tmp_path, capsys):
    assert run("restore", photo, photo, "-p", "denoise", "--weights", weights_file, "-o", tmp_path / "x.png") == 2
    assert "--out-dir" in error_line(capsys)


@pytest.mark.slow
def test_out_of_memory_suggests_tiles(tmp_path, weights_file):
    """A real allocation failure: the process may use 4 GiB, one 12-megapixel tile needs more."""
    y, x = np.mgrid[0:3000, 0:4000]
    big = tmp_path / "big.png"
    Image.fromarray(np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)).save(big)

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    command = [
        sys.executable,
        "-m",
        "textpromptir",
        "restore",
        str(big),
        "-p",
        "denoise",
        "--weights",
        str(weights_file),
        "--tile",
        "0",
        "-o",
        str(tmp_path / "out.png"),
        "-q",
    ]
    result = subprocess.run(command, preexec_fn=limit_memory, capture_output=True, text=True, timeout=300)
    assert result.returncode == 5, result.stderr
    assert result.stderr.strip().splitlines() == [
        "textpromptir: error: Out of memory on cpu while restoring a 4000x3000 tile: "
        "use smaller tiles, for example --tile 512."
    ]
    assert not (tmp_path / "out.png").exists()


def test_a_prompt_that_names_no_restoration_is_refused(photo, weights_file, capsys):
    assert run("restore", photo, "-p", "add a dragon", "--weights", weights_file) == 2
    line = error_line(capsys)
    assert 'Nothing to restore was found in "add a dragon"' in line and "rain streaks" in line
    assert not photo.with_name("photo.restored.png").exists()


@pytest.mark.parametrize("own_setting, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_sleep_unless_the_user_says_otherwise(own_setting, expected):
    """Spinning OpenMP threads stall beside a busy host; the package must say so before torch loads."""
    environment = {key: value for key, value in os.environ.items() if key != "OMP_WAIT_POLICY"}
    if own_setting:
        environment["OMP_WAIT_POLICY"] = own_setting
    check = "import os, sys, textpromptir; print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", check], env=environment, capture_output=True, text=True, check=True)
    assert result.stdout.split() == [expected, "False"]


def test_a_failed_write_leaves_the_existing_output_as_it_was(tmp_path, weights_file):
    """A file-size limit makes the write fail part-way, as a full disk would."""
    source = tmp_path / "photo.png"
    Image.fromarray(photo_like(200, 300)).save(source)
    target = tmp_path / "out.png"
    target.write_bytes(b"an earlier result")

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (16384, 16384))

    command = [sys.executable, "-m", "textpromptir", "restore", str(source), "-p", "denoise"]
    command += ["--weights", str(weights_file), "-o", str(target), "-q"]
    result = subprocess.run(command, preexec_fn=limit_file_size, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("textpromptir: error: ") and "out.png could not be written" in line
    assert "File too large" in line and "unchanged" in line
    assert target.read_bytes() == b"an earlier result"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out.png", "photo.png"]  # no temporary file left


@pytest.mark.parametrize("where", ["-o", "--out-dir"])
def test_an_output_folder_that_cannot_be_written_is_refused_before_the_restore(photo, tmp_path, where, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    target = blocker / "out.png" if where == "-o" else blocker / "outputs"
    # The weights named do not exist: the folder is checked first, so they are never looked for.
    assert run("restore", photo, "-p", "denoise", "--weights", tmp_path / "none.safetensors", where, target) == 3
    line = error_line(capsys)
    assert "cannot be written" in line and str(blocker) in line


def test_an_output_name_without_a_known_format_is_refused_before_the_restore(photo, tmp_path, capsys):
    assert run("restore", photo, "-p", "denoise", "--weights", tmp_path / "none.safetensors", "-o", "x.bmp") == 3
    assert "cannot write .bmp" in error_line(capsys)


def test_a_hard_link_to_the_input_is_not_overwritten(photo, weights_file, tmp_path, capsys):
    link = tmp_path / "link.png"
    os.link(photo, link)
    before = photo.read_bytes()
    assert run("restore", photo, "-p", "denoise", "--weights", weights_file, "-o", link) == 2
    assert "overwrite its input" in error_line(capsys)
    assert photo.read_bytes() == before


def test_damaged_weights_are_refused(photo, tmp_path, capsys):
    model = untrained_model()
    with torch.no_grad():
        model.output.weight[0, 0, 0, 0] = float("nan")
    damaged = tmp_path / "damaged.safetensors"
    save_weights(model, damaged, dtype=torch.float32)
    assert run("restore", photo, "-p", "denoise", "--weights", damaged) == 4
    line = error_line(capsys)
    assert "damaged weights" in line and "output.weight" in line
    assert not photo.with_name("photo.restored.png").exists()
