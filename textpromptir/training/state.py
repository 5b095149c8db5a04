"""A run's saved state: fp16 weights and the step (small enough to commit), and the optimiser beside it."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from textpromptir.engine.weights import load_model, save_weights, weights_notes
from textpromptir.errors import WeightsError
from textpromptir.model import ModelConfig, TextPromptIR
from textpromptir.model.growth import can_grow, grow


def save_state(model: TextPromptIR, optimiser: torch.optim.Optimizer, step: int, run_dir: Path) -> None:
    """The latest state, replacing the previous one: fp16 weights and the step; the optimiser beside it."""
    save_weights(model, run_dir / "state.tmp", trained_steps=str(step))
    os.replace(run_dir / "state.tmp", run_dir / "state.safetensors")
    moments = {}
    for index, parameter in enumerate(model.parameters()):
        for name, tensor in optimiser.state.get(parameter, {}).items():
            if torch.is_tensor(tensor):
                moments[f"{index}.{name}"] = tensor.detach().float().cpu().contiguous()
    save_file(moments, str(run_dir / "optimizer.tmp"), metadata={"step": str(step)})
    os.replace(run_dir / "optimizer.tmp", run_dir / "optimizer.safetensors")


def restore_state(model: TextPromptIR, optimiser: torch.optim.Optimizer, run_dir: Path, start_from: str | None) -> int:
    """Load the run's latest state (or else `start_from`) into `model`; return the step to continue from.

    A `start_from` of a shallower config is grown into the model (model/growth.py).
    """
    state = run_dir / "state.safetensors"
    if not state.is_file():
        if not start_from:
            return 0
        state = Path(start_from)
    trained = load_model(state)
    if trained.config == model.config:
        model.load_state_dict(trained.state_dict())
    elif can_grow(trained, model):
        grow(model, trained)
    else:
        raise WeightsError(
            f"{state} holds a network of {shape(trained.config)}, which cannot grow into this run's "
            f"{shape(model.config)} (growing adds blocks or makes the upsampling bilinear, and changes nothing else): "
            "point start_from at a state of this size or of a shallower one, or leave it empty to start afresh."
        )
    step = int(weights_notes(state).get("trained_steps", "0"))
    moments_file = run_dir / "optimizer.safetensors"
    if moments_file.is_file():
        moments = load_file(str(moments_file))
        for index, parameter in enumerate(model.parameters()):
            entries = {key.split(".", 1)[1]: value for key, value in moments.items() if key.split(".")[0] == str(index)}
            if entries:
                optimiser.state[parameter] = {name: value.to(parameter.device) for name, value in entries.items()}
    return step


def shape(config: ModelConfig) -> str:
    """A network's shape in a few words, for messages."""
    blocks = "/".join(map(str, config.blocks))
    return f"width {config.width}, blocks {blocks}, {config.refinement_blocks} refinement blocks"
