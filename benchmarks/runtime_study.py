"""CPU inference runtimes against eager PyTorch for the shipped `lite` model (a study, not an engine path).

Runs the model, on the same square tiles and interleaved in this process, as
- eager: as the engine runs it (channels_last, inference_mode, blocks in
  cache-sized strips of rows);
- ORT, ORT no-spin: ONNX Runtime's CPUExecutionProvider (graph optimisation
  ALL, intra_op_num_threads=--threads), with its default spinning pool
  threads and with spinning off;
- OpenVINO f32 (and OpenVINO bf16 where the CPU has bf16 instructions):
  openvino's CPU plugin (LATENCY hint, INFERENCE_NUM_THREADS=--threads);
and prints the median seconds of each, their ratio to eager and the PSNR of
each output against eager's. Both runtimes load one torch.export of the
model, converted by torch.onnx.export and openvino.convert_model: inputs the
image (1, 3, H, W), H and W dynamic multiples of 8, and the text embedding
(1, 384); the blocks' whole-map path (the strip path's loops depend on the
size, which an export would freeze). A runtime that is not installed is left
out.

On a busy machine, set OMP_WAIT_POLICY=PASSIVE for a fair eager figure at
2+ threads (textpromptir sets it when imported; benchmarks/PROFILE.md).

    pip install onnxruntime onnx onnxscript openvino   # not project dependencies
    python benchmarks/runtime_study.py [--threads 2] [--sizes 256 512 1024] [--repeats 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cpu_speed import median_seconds  # this folder is on sys.path when a benchmark runs as a script

from textpromptir.engine.weights import SHIPPED_WEIGHTS, load_model
from textpromptir.metrics import psnr
from textpromptir.model import SIZES, TextPromptIR

Runner = Callable[[np.ndarray], np.ndarray]  # (1, 3, H, W) float32 -> restored


def build_model() -> tuple[TextPromptIR, str]:
    """The shipped weights when installed, else a random `lite` with a non-zero output conv."""
    if SHIPPED_WEIGHTS.is_file():
        return load_model(SHIPPED_WEIGHTS).eval(), f"shipped weights ({SHIPPED_WEIGHTS.name})"
    torch.manual_seed(0)
    model = TextPromptIR(SIZES["lite"]).eval()
    model.output.reset_parameters()  # the zero init would make every output equal to its input
    return model, "random init"


def export_program(model: TextPromptIR) -> torch.export.ExportedProgram:
    """The model on its whole-map path, H and W dynamic multiples of 8."""
    height, width = torch.export.Dim("height", max=1024), torch.export.Dim("width", max=1024)
    example = (torch.rand(1, 3, 256, 256), torch.randn(1, 384))
    return torch.export.export(
        model.requires_grad_(False), example, dynamic_shapes=({2: 8 * height, 3: 8 * width}, None)
    )


def onnx_runtime(path: Path, text: torch.Tensor, threads: int, spinning: bool) -> Runner:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if not spinning:  # idle pool threads sleep instead of spinning: kinder to a busy machine
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda image: session.run(None, {"image": image, "text": text.numpy()})[0]


def openvino_runtime(converted: Any, text: torch.Tensor, threads: int, precision: str) -> Runner:
    import openvino

    compiled = openvino.Core().compile_model(
        converted,
        "CPU",
        {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"},
    )
    return lambda image: compiled([image, text.numpy()])[0]


def timed(what: str, make: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    made = make()
    print(f"{what} in {time.perf_counter() - started:.0f} s")
    return made


def runtimes(model: TextPromptIR, text: torch.Tensor, threads: int, onnx_path: Path) -> dict[str, Runner]:
    """Every runtime case that can run here, built once from one export."""
    program = timed("exported the model (torch.export)", lambda: export_program(model))
    cases: dict[str, Runner] = {}
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnxscript"):
        onnx = timed("converted it to ONNX", lambda: torch.onnx.export(program, dynamo=True, optimize=True))
        onnx.save(str(onnx_path))
        cases["ORT"] = onnx_runtime(onnx_path, text, threads, spinning=True)
        cases["ORT no-spin"] = onnx_runtime(onnx_path, text, threads, spinning=False)
    else:
        print("onnxruntime or onnxscript is not installed: ONNX Runtime left out")
    if importlib.util.find_spec("openvino"):
        import openvino

        converted = timed(f"converted it for OpenVINO {openvino.__version__}", lambda: openvino.convert_model(program))
        cases["OpenVINO f32"] = openvino_runtime(converted, text, threads, "f32")
        if "BF16" in openvino.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
            cases["OpenVINO bf16"] = openvino_runtime(converted, text, threads, "bf16")
    else:
        print("openvino is not installed: OpenVINO left out")
    return cases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, origin = build_model()
    torch.manual_seed(1)
    text = torch.randn(1, 384)
    with tempfile.TemporaryDirectory() as scratch:
        cases = runtimes(model, text, args.threads, Path(scratch) / "textpromptir-lite.onnx")
    if not cases:
        print("No runtime to compare: `pip install onnxruntime onnx onnxscript openvino` to run this study. Skipped.")
        return 0
    engine = model.to(memory_format=torch.channels_last).run_in_strips()
    print(f"\nlite, {origin}; torch {torch.__version__}, {args.threads} threads; median of {args.repeats}, interleaved")
    print("each runtime: seconds, its time / eager's, PSNR of its output against eager's\n")
    print("| tile | eager s | " + " | ".join(f"{name} s | / eager | PSNR dB" for name in cases) + " |")
    print("|---|---:|" + "---:|---:|---:|" * len(cases))
    for side in args.sizes:
        torch.manual_seed(side)
        image = torch.rand(1, 3, side, side)
        image_last = image.contiguous(memory_format=torch.channels_last)

        def eager(image_last: torch.Tensor = image_last) -> np.ndarray:
            with torch.inference_mode():
                return engine(image_last, text).contiguous().numpy()

        pixels = image.numpy()
        runs: dict[str, Callable[[], object]] = {"eager": eager}
        runs |= {name: (lambda run=run, pixels=pixels: run(pixels)) for name, run in cases.items()}
        seconds = median_seconds(runs, args.repeats)
        reference = eager()
        outputs = {name: run(pixels) for name, run in cases.items()}
        cells = [
            f"{seconds[name]:.3f} | {seconds[name] / seconds['eager']:.2f} | {psnr(reference, output, peak=1.0):.1f}"
            for name, output in outputs.items()
        ]
        print(f"| {side} x {side} | {seconds['eager']:.3f} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
