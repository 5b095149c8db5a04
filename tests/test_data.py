"""The photo pool builder, on a real .deb built here (no download)."""

import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from textpromptir.training import data

from conftest import photo_like


def flat_logo(size: int = 400) -> Image.Image:
    logo = np.full((size, size, 3), 255, np.uint8)
    logo[100:300, 100:300] = (200, 30, 30)
    return Image.fromarray(logo)


@pytest.fixture
def package(tmp_path):
    """A Debian package with a photo, its resized copy, a logo, an icon, junk and a copyright file."""
    tree = tmp_path / "build"
    images = tree / "usr" / "share" / "photos"
    images.mkdir(parents=True)
    photo = Image.fromarray(photo_like(480, 640, seed=3))
    photo.save(images / "street.jpg", quality=92)
    photo.resize((600, 450)).save(images / "zz-street-resized.png")  # the same photo again
    Image.fromarray(photo_like(400, 400, seed=9)[:, ::-1]).save(images / "skipped-by-hand.png")
    flat_logo().save(images / "logo.png")
    Image.fromarray(photo_like(64, 64)).save(images / "icon.png")
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    doc = tree / "usr" / "share" / "doc" / "testphotos"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Files: *\nLicense: CC0-1.0\n\nFiles: debian/*\nLicense: GPL-2+\n")
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN" / "control").write_text(
        "Package: testphotos\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <t@example.org>\nDescription: photos\n"
    )
    cache = tmp_path / "pool" / "cache"
    cache.mkdir(parents=True)
    subprocess.run(
        ["dpkg-deb", "--build", str(tree), str(cache / "testphotos_1.0_all.deb")], check=True, capture_output=True
    )
    return data.Source("testphotos", "deb", "train", "usr/share/photos", skip=("skipped-by-hand",))


def test_fetch_keeps_photos_and_says_why_it_drops_the_rest(tmp_path, package):
    root = tmp_path / "pool"
    photos = data.fetch(root, (package,), log=lambda line: None)
    assert [photo.path for photo in photos] == ["photos/train/testphotos/usr__share__photos__street.jpg"]
    kept = photos[0]
    assert (kept.width, kept.height, kept.source, kept.split) == (640, 480, "testphotos", "train")
    assert kept.licence == "CC0-1.0, GPL-2+"
    assert (root / kept.path).stat().st_size == kept.bytes
    reasons = {
        row["file"].rsplit("/", 1)[-1]: row["reason"] for row in map(json.loads, (root / "rejected.jsonl").open())
    }
    assert reasons == {
        "broken.jpg": "unreadable",
        "icon.png": "small",
        "logo.png": "flat (cartoon, logo or flat art)",
        "skipped-by-hand.png": "not a photo (listed by hand)",
        "zz-street-resized.png": "near-duplicate",
    }
    assert data.read_manifest(root, "train") == photos and data.read_manifest(root, "val") == []


def test_fetch_is_idempotent_and_resumes(tmp_path, package):
    root = tmp_path / "pool"
    first = data.fetch(root, (package,), log=lambda line: None)
    (root / "cache" / "testphotos_1.0_all.deb").unlink()  # a finished source needs no download again
    messages = []
    assert data.fetch(root, (package,), log=messages.append) == first
    assert "done before" in messages[0]
    (root / "done" / "testphotos.json").unlink()  # as if cut short: that source is fetched again
    with pytest.raises(RuntimeError, match="could not download testphotos"):
        data.fetch(root, (package,), log=lambda line: None)


def test_reserved_packages_can_never_be_sources():
    for name in data.RESERVED:
        with pytest.raises(ValueError, match="reserved"):
            data.Source(name, "deb", "train")
    assert not data.RESERVED & {source.name for source in data.SOURCES}
    assert {source.split for source in data.SOURCES} == {"train", "val"}


def test_photo_measures_tell_photos_from_flat_art():
    photo = np.asarray(Image.fromarray(photo_like(256, 256)).convert("L"), np.float32) / 255
    logo = np.asarray(flat_logo(256).convert("L"), np.float32) / 255
    assert data.flat_share(photo) < data.MAX_FLAT_SHARE < data.flat_share(logo)
    assert data.detail(photo) > data.MIN_DETAIL
    assert bin(data.dhash(photo) ^ data.dhash(photo[:, ::-1])).count("1") > data.DUPLICATE_BITS
