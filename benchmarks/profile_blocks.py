"""Where the CPU time of the shipped `lite` model goes, by class of operator (a profile).

Profiles inference (one 512 x 512 tile, no_grad, channels_last) and one
training step (AdamW, L1 loss, a batch of 8 patches of 96 x 96) with
torch.profiler, then sums the self time of every operator into a class:

- by the module that ran it: forward hooks open a `cls::<class>` range
  (torch.profiler.record_function) around norms, convolutions (depth-wise,
  1x1 or dense 3x3, read from the module), the channel attention's own
  matmuls/softmax, the text modulation (FiLM, ECA, prompt MLP) and pixel
  (un)shuffle; the optimizer step and zero_grad get a range too;
- backward operators inherit the class of the forward operator that made
  their autograd node (matched by sequence number);
- wherever they run, copies and view changes count as "layout changes";
  the rest is classed by name (elementwise) or left as "other".

The machine may be busy: each case is profiled several times and the fastest
run is shown (the least disturbed); shares, not milliseconds, are the point.
With 2+ threads on a busy machine, set OMP_WAIT_POLICY=PASSIVE: spinning
OpenMP threads otherwise stall and distort the shares (benchmarks/PROFILE.md).

    [OMP_WAIT_POLICY=PASSIVE] python benchmarks/profile_blocks.py [--threads 2] [--repeats 5] [--top 12]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textpromptir.model import SIZES, TextPromptIR
from textpromptir.model.attention import TransposedAttention
from textpromptir.model.norm import LayerNorm2d
from textpromptir.model.text_modulation import PromptProjector, TextModulation

SIDE = 512
BATCH, PATCH = 8, 96
LABEL = "cls::"
BACKWARD = "autograd::engine::evaluate_function: "

NORMS, DEPTHWISE, POINTWISE, DENSE = "norms", "depth-wise 3x3 conv", "1x1 conv", "dense 3x3 conv"
ATTENTION, FILM, SHUFFLE = "channel attention (matmul/softmax)", "FiLM / text modulation", "pixel (un)shuffle"
LAYOUT, ELEMENTWISE, OPTIMIZER, OTHER = "layout changes", "elementwise", "optimizer", "other"
PYTHON = "outside operators (Python)"

LAYOUT_OPS = {
    "aten::copy_", "aten::contiguous", "aten::clone", "aten::permute", "aten::cat", "aten::to", "aten::_to_copy",
    "aten::reshape", "aten::view", "aten::_unsafe_view", "aten::transpose", "aten::t", "aten::as_strided",
    "aten::expand", "aten::slice", "aten::narrow", "aten::split", "aten::chunk", "aten::unfold", "aten::diagonal",
    "aten::select", "aten::squeeze", "aten::unsqueeze", "aten::constant_pad_nd", "aten::pad",
}  # fmt: skip
ELEMENTWISE_OPS = {
    "aten::gelu", "aten::gelu_backward", "aten::mul", "aten::mul_", "aten::add", "aten::add_", "aten::sub",
    "aten::div", "aten::div_", "aten::abs", "aten::sgn", "aten::mean", "aten::sum", "aten::fill_", "aten::neg",
    "aten::addcmul", "aten::sigmoid", "aten::ones_like", "aten::zero_",
}  # fmt: skip


def module_class(module: nn.Module) -> str | None:
    """The profile class of the operators a module runs itself, or None to leave them to their names."""
    if isinstance(module, nn.Conv2d):
        if module.groups > 1 and module.groups == module.in_channels == module.out_channels:
            return DEPTHWISE
        return POINTWISE if module.kernel_size == (1, 1) else DENSE
    if isinstance(module, LayerNorm2d | nn.LayerNorm):
        return NORMS
    if isinstance(module, TransposedAttention):
        return ATTENTION
    if isinstance(module, TextModulation | PromptProjector):
        return FILM
    if isinstance(module, nn.PixelShuffle | nn.PixelUnshuffle):
        return SHUFFLE
    return None


def label_modules(model: nn.Module) -> None:
    """Wrap every classed module's forward in a `cls::<class>` profiler range."""

    def enter(module: nn.Module, _inputs: object) -> None:
        module._profile_range = record_function(LABEL + module_class(module))
        module._profile_range.__enter__()

    def leave(module: nn.Module, _inputs: object, _output: object) -> None:
        module._profile_range.__exit__(None, None, None)

    for module in model.modules():
        if module_class(module) is not None:
            module.register_forward_pre_hook(enter)
            module.register_forward_hook(leave)


def enclosing(event: FunctionEvent, prefix: str) -> FunctionEvent | None:
    """The innermost range named `prefix...` that holds `event` (or the event itself)."""
    while event is not None and not event.name.startswith(prefix):
        event = event.cpu_parent
    return event


def own_class(event: FunctionEvent) -> str | None:
    """The class from the event's module range, or from its name; None if neither tells."""
    label = enclosing(event, LABEL)
    if label is not None:
        return label.name[len(LABEL) :]
    return ELEMENTWISE if event.name in ELEMENTWISE_OPS else None


def classify(events: list[FunctionEvent]) -> dict[str, dict[str, float]]:
    """Self time (ms) of the events per class, and within a class per operator name."""
    events = sorted(events, key=lambda e: e.time_range.start)
    forward_class: dict[int, str] = {}  # autograd node sequence number -> class of the op that made it
    for event in events:
        if event.sequence_nr >= 0 and enclosing(event, BACKWARD) is None and (found := own_class(event)):
            forward_class[event.sequence_nr] = found  # the last op with a number is the one that made the node
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for event in events:
        label, node = enclosing(event, LABEL), enclosing(event, BACKWARD)
        if event.name in LAYOUT_OPS and not (label is not None and label.name == LABEL + SHUFFLE):
            found = LAYOUT
        elif label is not None:
            found = label.name[len(LABEL) :]
        elif node is not None and "AccumulateGrad" in node.name:
            found = OPTIMIZER
        elif node is not None and node.sequence_nr in forward_class:
            found = forward_class[node.sequence_nr]
        else:
            found = own_class(event) or OTHER
        name = "(Python in module ranges)" if event.name.startswith(LABEL) else event.name.removeprefix("aten::")
        totals[found][name] += event.self_cpu_time_total / 1e3
    return totals


def least_disturbed(run: Callable[[], object], repeats: int) -> tuple[profile, float, list[float]]:
    """Profiles `repeats` runs one by one (after a warm-up); the profile and wall ms of the fastest, all walls.

    Other processes on a busy machine stall multi-threaded kernels at random; the fastest run is the least
    disturbed one, and its shares are the closest to those of an idle machine.
    """
    run()  # warm-up
    runs = []
    for _ in range(repeats):
        with profile(activities=[ProfilerActivity.CPU], record_shapes=False) as profiler:
            started = time.perf_counter()
            run()
            wall = (time.perf_counter() - started) * 1e3
        runs.append((wall, profiler))
    wall, profiler = min(runs, key=lambda pair: pair[0])
    return profiler, wall, sorted(w for w, _ in runs)


def print_table(title: str, totals: dict[str, dict[str, float]], wall: float) -> None:
    rows = {name: sum(ops.values()) for name, ops in totals.items()}
    rows[PYTHON] = max(wall - sum(rows.values()), 0.0)
    print(f"\n{title}: {wall:.0f} ms\n")
    print("| class | ms | share % | main operators (ms) |")
    print("|---|---:|---:|---|")
    for name, value in sorted(rows.items(), key=lambda item: -item[1]):
        ops = sorted(totals.get(name, {}).items(), key=lambda item: -item[1])[:3]
        main = ", ".join(f"{op} {ms:.0f}" for op, ms in ops if ms >= 0.5)
        print(f"| {name} | {value:.1f} | {100 * value / wall:.1f} | {main} |")


def print_top_ops(profiler: profile, top: int) -> None:
    print(f"\ntop {top} operators by self time (key_averages)\n")
    print("| operator | ms | calls |")
    print("|---|---:|---:|")
    averages = sorted(profiler.key_averages(), key=lambda a: -a.self_cpu_time_total)
    for average in averages[:top]:
        print(f"| {average.key} | {average.self_cpu_time_total / 1e3:.1f} | {average.count} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--top", type=int, default=12, help="also list this many operators by self time")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    text = torch.randn(1, 384)
    model = TextPromptIR(SIZES["lite"]).to(memory_format=torch.channels_last)
    model.output.reset_parameters()  # a zero output conv would let backward skip work
    label_modules(model)

    image = torch.rand(1, 3, SIDE, SIDE).contiguous(memory_format=torch.channels_last)

    def infer() -> object:
        with torch.no_grad():
            return model.eval().run_in_strips()(image, text)

    batch = torch.rand(BATCH, 3, PATCH, PATCH).contiguous(memory_format=torch.channels_last)
    optimiser = torch.optim.AdamW(model.parameters(), 1e-4)
    texts = text.expand(BATCH, -1)

    def step() -> object:
        loss = (model.train().run_in_strips(False)(batch, texts) - batch).abs().mean()
        with record_function(LABEL + OPTIMIZER):
            optimiser.zero_grad(set_to_none=True)
        loss.backward()
        with record_function(LABEL + OPTIMIZER):
            optimiser.step()
        return loss

    print(f"lite, {args.threads} threads, the least disturbed of {args.repeats} profiled runs after one warm-up")
    for title, run in (
        (f"inference, one {SIDE} x {SIDE} tile, no_grad, channels_last", infer),
        (f"training step, batch {BATCH} x {PATCH} x {PATCH}, L1, AdamW", step),
    ):
        profiler, wall, walls = least_disturbed(run, args.repeats)
        print_table(title, classify(list(profiler.events())), wall)
        print(f"\n(fastest of {args.repeats} profiled runs; all, ms: {', '.join(f'{w:.0f}' for w in walls)})")
        if args.top:
            print_top_ops(profiler, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
