"""Self-describing safetensors weights: the tensors plus the config that built them."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from textpromptir.errors import WeightsError
from textpromptir.model import SIZES, ModelConfig, TextPromptIR
from textpromptir.resources import resource

FORMAT = "textpromptir-backbone-1"
SHIPPED_WEIGHTS = resource("weights", "textpromptir-lite.safetensors")


def save_weights(model: TextPromptIR, path: Path, *, dtype: torch.dtype = torch.float16, **notes: str) -> None:
    """Write the model's tensors (fp16 by default) and its config to `path`."""
    tensors = {name: tensor.detach().to("cpu", dtype).contiguous() for name, tensor in model.state_dict().items()}
    metadata = {"format": FORMAT, "config": model.config.to_json(), **notes}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def load_model(path: Path) -> TextPromptIR:
    """Build the backbone described by a weights file and load its tensors in float32."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"Weights not found: {path}. Pass --weights with the path of a .safetensors file.")
    try:
        with safe_open(str(path), framework="pt") as weights:
            metadata = weights.metadata() or {}
            state = {name: weights.get_tensor(name).float() for name in weights.keys()}  # noqa: SIM118 (not a dict)
    except (SafetensorError, OSError) as error:
        raise WeightsError(
            f"{path} is not a readable safetensors file ({error}); it may be truncated: copy it again."
        ) from error
    if metadata.get("format") != FORMAT:
        raise WeightsError(f"{path} does not hold TextPromptIR backbone weights (format {metadata.get('format')!r}).")
    damaged = [name for name, tensor in state.items() if not torch.isfinite(tensor).all()]
    if damaged:
        raise WeightsError(
            f"{path} holds damaged weights: {len(damaged)} tensor(s), {damaged[0]} first, have values that are "
            "not numbers (NaN or infinity). Copy the file again, or install TextPromptIR again for the shipped ones."
        )
    try:
        model = TextPromptIR(ModelConfig.from_json(metadata["config"]))
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise WeightsError(
            f"{path} does not match the model it describes; it is damaged or from another version."
        ) from error
    return model.eval()


def weights_notes(path: Path) -> dict[str, str]:
    """The notes a weights file carries beside its format and config (trained_steps, for one)."""
    with safe_open(str(path), framework="pt") as weights:
        metadata = dict(weights.metadata() or {})
    return {key: value for key, value in metadata.items() if key not in ("format", "config")}


def initialise_weights(path: Path, size: str = "lite", seed: int = 0) -> TextPromptIR:
    """Write freshly initialised (untrained) weights of a named size: the start of training."""
    torch.manual_seed(seed)
    model = TextPromptIR(SIZES[size])
    save_weights(model, path, dtype=torch.float32, trained_steps="0")
    return model
