"""Rebuild the shipped sample photos (run once; the outputs are committed).

Source: skimage/data/astronaut.png from the scikit-image wheel on PyPI, a NASA
photo of Eileen Collins in the public domain. It belongs to our validation
pool, so no shipped model was trained on it.

    pip download --no-deps scikit-image -d /tmp/wheels
    python resources/samples/make_samples.py /tmp/wheels/scikit_image-*.whl
"""

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        astronaut = Image.open(io.BytesIO(archive.read("skimage/data/astronaut.png"))).convert("RGB")
    clean = np.asarray(astronaut.crop((64, 0, 448, 384)), dtype=np.float32)  # 384 x 384, the face and suit
    noise = np.random.default_rng(0).normal(0.0, 25.0, clean.shape)  # sigma 25 of 255
    noisy = np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(HERE / "astronaut-noisy.png", optimize=True)
    print(f"wrote {HERE / 'astronaut-noisy.png'}")


if __name__ == "__main__":
    main(sys.argv[1])
