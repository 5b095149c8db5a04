"""The CUDA path, on a real GPU only (marked `gpu`: skipped where PyTorch sees none, as in CI).

Nothing here is mocked: without a GPU these tests do not run at all. On a lent
GPU, `pytest -m gpu` runs them; benchmarks/cuda_check.py prints speed and memory.
"""

import numpy as np
import pytest
import torch

from textpromptir.engine.device import half_precision, pick_device
from textpromptir.engine.restore import Restorer
from textpromptir.metrics import psnr

from conftest import photo_like, untrained_model

pytestmark = pytest.mark.gpu


def test_auto_picks_the_gpu_in_reduced_precision():
    device = pick_device("auto")
    assert device.type == "cuda"
    assert half_precision(device) in (torch.bfloat16, torch.float16)


def test_the_gpu_agrees_with_the_cpu_in_float32_and_tiles_alike():
    image = photo_like(600, 700)
    on_cpu = Restorer(untrained_model(), torch.device("cpu")).restore(image, "remove the noise", tile=0)
    gpu = Restorer(untrained_model(), torch.device("cuda"))
    assert gpu.model.output.weight.is_cuda and not any(
        block.in_strips for block in gpu.model.modules() if hasattr(block, "in_strips")
    )
    whole = gpu.restore(image, "remove the noise", tile=0)
    assert psnr(whole, on_cpu) >= 45.0
    assert psnr(gpu.restore(image, "remove the noise", tile=256), whole) >= 45.0
    assert np.abs(whole.astype(int) - image).mean() > 0.5  # the network did work


def test_float_layers_and_alpha_survive_the_gpu():
    rgba = np.concatenate([photo_like(64, 80), np.full((64, 80, 1), 77, np.uint8)], axis=2).astype(np.float32) / 255
    restored = Restorer(untrained_model(), torch.device("cuda")).restore(rgba, "remove the noise")
    assert restored.dtype == np.float32 and restored.shape == rgba.shape
    assert np.array_equal(restored[..., 3], rgba[..., 3])
