"""ONNX Runtime against eager PyTorch for the shipped `lite` model on the CPU (a study, not an engine path).

Exports the model (eval) to ONNX with torch.onnx.export(dynamo=True): the
image (1, 3, H, W) with H and W dynamic multiples of 8 and the text
embedding (1, 384) as a second input. Then runs it with onnxruntime's
CPUExecutionProvider (intra_op_num_threads=--threads, graph optimisation
level ALL; once with ORT's default spinning pool threads, once without)
interleaved, in this process, with eager PyTorch as the engine runs it
(channels_last, inference_mode) on the same square tiles, and prints the
median seconds of each, their ratios and the PSNR between the outputs.

On a busy machine, set OMP_WAIT_POLICY=PASSIVE for a fair eager figure at
2+ threads: PyTorch's OpenMP threads otherwise spin-wait and stall (see
benchmarks/PROFILE.md); ORT does not use OpenMP.

The exporter cannot take the attention as written: the in-place copy into a
diagonal view that builds the block-diagonal head-mixing matrix
(attention.py) leaves a non-functional graph. `export_friendly_attention`
builds the same matrix with a mask multiply; it is patched in for the export
only and gives bit-identical outputs (checked below).

    pip install onnxruntime onnx onnxscript   # not project dependencies
    [OMP_WAIT_POLICY=PASSIVE] python benchmarks/onnx_runtime_study.py [--threads 2] [--sizes 256 512 1024]
        [--repeats 5] [--onnx PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cpu_speed import median_seconds  # this folder is on sys.path when a benchmark runs as a script

from textpromptir.model import SIZES, TextPromptIR
from textpromptir.model.attention import NORM_EPS, TransposedAttention
from textpromptir.weights import SHIPPED_WEIGHTS, load_model


def export_friendly_attention(self: TransposedAttention, x: torch.Tensor) -> torch.Tensor:
    """TransposedAttention.forward with the block-diagonal mixing matrix made by a mask, not an in-place copy."""
    b, c, h, w = x.shape
    heads, d = self.heads, c // self.heads
    qkv = self.qkv_local(self.qkv(x))
    pixels = qkv.permute(0, 2, 3, 1).reshape(b, h * w, 3 * c)
    qk, v = pixels[..., : 2 * c].float(), pixels[..., 2 * c :]
    gram = qk.transpose(1, 2) @ qk
    norms = gram.diagonal(dim1=1, dim2=2).sqrt().clamp_min(NORM_EPS)
    q_norm, k_norm = norms[:, :c].reshape(b, heads, d, 1), norms[:, c:].reshape(b, heads, 1, d)
    cross = gram[:, :c, c:]
    per_head = cross.reshape(b, heads, d, heads, d).diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2)
    attention = (per_head / (q_norm * k_norm) * self.temperature).softmax(dim=-1)  # (B, heads, d, d)
    eye = torch.eye(heads, dtype=attention.dtype, device=attention.device).view(1, heads, 1, heads, 1)
    mixing = (attention.unsqueeze(3) * eye).reshape(b, c, c)  # block-diagonal (B, C, C)
    combined = self.project.weight.view(c, c).float() @ mixing
    out = v @ combined.transpose(1, 2).to(v.dtype)
    return out.view(b, h, w, c).permute(0, 3, 1, 2)


@contextlib.contextmanager
def attention_patched() -> Iterator[None]:
    original = TransposedAttention.forward
    TransposedAttention.forward = export_friendly_attention
    try:
        yield
    finally:
        TransposedAttention.forward = original


def build_model() -> tuple[TextPromptIR, str]:
    """The shipped weights when installed, else a random `lite` with a non-zero output conv."""
    if SHIPPED_WEIGHTS.is_file():
        return load_model(SHIPPED_WEIGHTS), f"shipped weights ({SHIPPED_WEIGHTS.name})"
    torch.manual_seed(0)
    model = TextPromptIR(SIZES["lite"]).eval()
    model.output.reset_parameters()  # the zero init would make every output equal to its input
    return model, "random init"


def export(model: TextPromptIR, text: torch.Tensor, path: Path) -> float:
    """Write the model as ONNX with dynamic H, W (multiples of 8); returns the seconds it took."""
    image = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        before = model(image, text)
        with attention_patched():
            after = model(image, text)
    if not torch.equal(before, after):
        raise RuntimeError("the export-friendly attention does not reproduce the model's output")
    h, w = torch.export.Dim("h", min=1, max=1024), torch.export.Dim("w", min=1, max=1024)
    started = time.perf_counter()
    with attention_patched():
        program = torch.onnx.export(
            model,
            (image, text),
            dynamo=True,
            input_names=["image", "text"],
            output_names=["restored"],
            dynamic_shapes=({2: 8 * h, 3: 8 * w}, None),
            optimize=True,
        )
    program.save(str(path))
    return time.perf_counter() - started


def ort_session(path: Path, threads: int, spinning: bool = True) -> Any:  # an onnxruntime.InferenceSession
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:  # idle pool threads sleep instead of spinning: kinder to a busy machine
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--onnx", type=Path, help="write (or reuse, if it exists) the ONNX file here")
    args = parser.parse_args()
    try:
        import onnxruntime
    except ImportError:
        print("onnxruntime is not installed: `pip install onnxruntime onnx onnxscript` to run this study. Skipped.")
        return 0
    torch.set_num_threads(args.threads)
    model, origin = build_model()
    torch.manual_seed(1)
    text = torch.randn(1, 384)
    with tempfile.TemporaryDirectory() as scratch:
        path = args.onnx or Path(scratch) / "textpromptir-lite.onnx"
        if path.is_file():
            print(f"reusing {path}")
        else:
            print(f"exported {path.name} in {export(model, text, path):.0f} s")
        sessions = {"ORT": ort_session(path, args.threads), "ORT no-spin": ort_session(path, args.threads, False)}
    engine = model.to(memory_format=torch.channels_last).eval()
    print(f"lite, {origin}; torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} threads")
    print(f"median of {args.repeats}, eager and ORT interleaved\n")
    print("| tile | eager s | ORT s | ORT / eager | ORT no-spin s | no-spin / eager | PSNR vs eager dB | max diff |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for side in args.sizes:
        torch.manual_seed(side)
        image = torch.rand(1, 3, side, side)
        image_last = image.contiguous(memory_format=torch.channels_last)
        feeds = {"image": image.numpy(), "text": text.numpy()}

        def eager(image_last: torch.Tensor = image_last) -> np.ndarray:
            with torch.inference_mode():
                return engine(image_last, text).contiguous().numpy()

        def runner(session: Any, feeds: dict[str, np.ndarray] = feeds) -> Callable[[], np.ndarray]:
            return lambda: session.run(None, feeds)[0]

        cases = {"eager": eager, **{name: runner(session) for name, session in sessions.items()}}
        seconds = median_seconds(cases, args.repeats)
        reference, candidate = eager(), cases["ORT"]()
        eager_s, ort_s, quiet_s = seconds["eager"], seconds["ORT"], seconds["ORT no-spin"]
        print(
            f"| {side} x {side} | {eager_s:.3f} | {ort_s:.3f} | {ort_s / eager_s:.2f} | {quiet_s:.3f} | "
            f"{quiet_s / eager_s:.2f} | {psnr(reference, candidate):.1f} | {np.abs(reference - candidate).max():.1e} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
