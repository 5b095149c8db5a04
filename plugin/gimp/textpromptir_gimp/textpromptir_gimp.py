#!/usr/bin/env python3
"""TextPromptIR for GIMP 3: Filters > Enhance > Restore with Text Prompt...

Restores the active layer (or the selected part of it) as described by a
plain-language prompt, and adds the result as a new layer right above it, in
one undo step. The model lives in the TextPromptIR worker, a separate
process of the project's own Python environment that this plug-in reaches
over loopback (GIMP starts a new plug-in process for every call, so the
model cannot live here). Standard library and GObject introspection only.

Interactive use asks for the prompt and strength with the project's Qt
dialog, run as a program of the project's environment (GIMP's Python has no
Qt), which previews the area's pixels (handed over in a temporary file).
Scripts pass the prompt, and optionally the strength, as arguments:

    procedure = Gimp.get_pdb().lookup_procedure("python-fu-textpromptir-restore")
    config = procedure.create_config()
    config.set_property("run-mode", Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    config.set_property("prompt", "remove the noise")
    config.set_property("strength", 60.0)  # percent; -1 (the default): as the prompt's words say
    result = procedure.run(config)  # result.index(0): Gimp.PDBStatusType; on failure result.index(1): why
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

# The installer puts the shared client and wire packages inside this plug-in's folder.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from textpromptir_client.client import Image, WorkerError, connect, project_environment, project_python  # noqa: E402
from textpromptir_client.installation import missing_engine  # noqa: E402
from textpromptir_client.rules import CONTEXT, result_layer_name, size_refusal  # noqa: E402
from textpromptir_client.settings import Settings  # noqa: E402
from textpromptir_wire import discovery, frames  # noqa: E402

PROCEDURE = "python-fu-textpromptir-restore"
MENU_LABEL = "Restore with Text Prompt..."
MENU_PATH = "<Image>/Filters/Enhance"
# Gamma-encoded float RGBA: babl converts from and to any precision (8/16/32-bit
# integer, half, float, double; linear or not) without clipping or rounding.
PIXEL_FORMAT = "R'G'B'A float"
MASK_FORMAT = "Y u8"
DIALOG_TIMEOUT = 3600.0  # seconds a prompt dialog may stay open


class Refused(Exception):
    """The call cannot be served; the message tells the user what to do instead."""


class Cancelled(Exception):
    """The user closed the prompt dialog: nothing to do, nothing changed."""


class Area:
    """The part of the layer that is sent: layer-relative x, y, width, height; `masked` if a selection limits it."""

    def __init__(self, x: int, y: int, width: int, height: int, masked: bool) -> None:
        self.x, self.y, self.width, self.height, self.masked = x, y, width, height, masked


def check_drawable(image: Gimp.Image, drawables: list) -> Gimp.Layer:
    if len(drawables) != 1:
        raise Refused(f"Select exactly one layer to restore ({len(drawables)} are selected).")
    layer = drawables[0]
    if not layer.is_layer():
        raise Refused(
            "Select a layer to restore: the active drawable is a channel or a layer mask. "
            "Click the layer's thumbnail (not its mask) in the Layers dialog."
        )
    if layer.is_group():
        raise Refused(
            "Select a pixel layer to restore: layer groups have no pixels of their own. "
            "Merge the group (Layer > Merge Layer Group) or pick a layer inside it."
        )
    if not layer.is_rgb():
        raise Refused(
            "TextPromptIR restores RGB layers; convert the image with Image > Mode > RGB (or work on an RGB copy)."
        )
    return layer


def area_to_restore(image: Gimp.Image, layer: Gimp.Layer) -> Area:
    """The rectangle of the layer to send: all of it, or the selection's bounds and a margin of context."""
    width, height = layer.get_width(), layer.get_height()
    if Gimp.Selection.is_empty(image):
        area = Area(0, 0, width, height, masked=False)
    else:
        touches, x, y, selected_width, selected_height = layer.mask_intersect()
        if not touches:
            raise Refused("The selection does not touch this layer: select a part of the layer, or Select > None.")
        left, top = max(x - CONTEXT, 0), max(y - CONTEXT, 0)
        right, bottom = min(x + selected_width + CONTEXT, width), min(y + selected_height + CONTEXT, height)
        area = Area(left, top, right - left, bottom - top, masked=True)
    refusal = size_refusal(area.width, area.height)
    if refusal:
        raise Refused(refusal)
    return area


def layer_offsets(layer: Gimp.Layer) -> tuple[int, int]:
    offsets = layer.get_offsets()
    return int(offsets[-2]), int(offsets[-1])  # (x, y) or (True, x, y), depending on the binding


def read_image(image: Gimp.Image, layer: Gimp.Layer, area: Area) -> Image:
    """The area's pixels as float RGBA, and the selection over it (0-255 per pixel) when one limits it."""
    rectangle = Gegl.Rectangle.new(area.x, area.y, area.width, area.height)
    pixels = layer.get_buffer().get(rectangle, 1.0, PIXEL_FORMAT, Gegl.AbyssPolicy.CLAMP)
    mask = None
    if area.masked:
        offset_x, offset_y = layer_offsets(layer)
        # The selection covers the canvas: outside it (a layer may stick out) nothing is selected.
        on_canvas = Gegl.Rectangle.new(offset_x + area.x, offset_y + area.y, area.width, area.height)
        mask = image.get_selection().get_buffer().get(on_canvas, 1.0, MASK_FORMAT, Gegl.AbyssPolicy.NONE)
    return Image(bytes(pixels), area.width, area.height, "f32", "RGBA", bytes(mask) if mask is not None else None)


def restore(image: Image, prompt: str, strength: float | None) -> Image:
    """Run the restoration in the worker (started if none runs), showing GIMP's progress bar."""
    Gimp.progress_init("Restoring with TextPromptIR: starting the engine…")

    def progress(done: int, total: int) -> None:
        Gimp.progress_set_text(f"Restoring with TextPromptIR: tile {min(done + 1, total)} of {total}…")
        Gimp.progress_update(done / total if total else 1.0)

    def queued(ahead: int) -> None:
        Gimp.progress_set_text(f"TextPromptIR: waiting for {ahead} other restoration(s)…")

    # GIMP is this process's parent: the worker lives as long as GIMP does (or until idle).
    with connect(Settings.load(), host_pid=os.getppid()) as session:
        Gimp.progress_set_text(f"Restoring with TextPromptIR on {session.device}…")
        result = session.restore(image, prompt, progress=progress, queued=queued, strength=strength)
    Gimp.progress_update(1.0)
    same_shape = (result.width, result.height, result.sample_format) == (image.width, image.height, "f32")
    if not same_shape or len(result.pixels) != frames.pixel_bytes(image.width, image.height, "f32"):
        raise WorkerError(
            f"The worker answered {result.width} x {result.height} {result.sample_format} pixels "
            f"for a {image.width} x {image.height} f32 request; run the installer again."
        )
    return result


def add_restored_layer(image: Gimp.Image, source: Gimp.Layer, area: Area, result: Image, prompt: str) -> Gimp.Layer:
    """Add the result as a new layer right above `source`, where the area lies: one undo step removes it."""
    offset_x, offset_y = layer_offsets(source)
    layer = Gimp.Layer.new(
        image,
        result_layer_name(prompt),
        area.width,
        area.height,
        Gimp.ImageType.RGBA_IMAGE,
        100.0,
        Gimp.LayerMode.NORMAL,
    )
    image.undo_group_start()
    inserted = False
    try:
        inserted = image.insert_layer(layer, source.get_parent(), image.get_item_position(source))
        layer.set_offsets(offset_x + area.x, offset_y + area.y)
        buffer = layer.get_buffer()
        buffer.set(Gegl.Rectangle.new(0, 0, area.width, area.height), PIXEL_FORMAT, bytes(result.pixels))
        buffer.flush()
        layer.update(0, 0, area.width, area.height)
        image.set_selected_layers([layer])
    except Exception:
        if inserted:  # take it out again: the image stays as it was
            image.remove_layer(layer)
        else:
            layer.delete()
        raise
    finally:
        image.undo_group_end()
    Gimp.displays_flush()
    return layer


def ask_prompt(layer: Gimp.Layer, area: Image) -> tuple[str, float | None]:
    """Show the project's Qt prompt dialog (a program of its own environment); the accepted prompt and strength.

    The dialog previews the area: its pixels (and selection) go to the program in files of a private folder.
    """
    python = project_python(Settings.load())
    subject = f"Layer “{layer.get_name()}”" + (" (selection)" if area.mask is not None else "")
    command = [python, "-m", "textpromptir_client.prompt", "--host-pid", str(os.getppid()), "--subject", subject]
    no_console = {"creationflags": subprocess.CREATE_NO_WINDOW} if sys.platform == "win32" else {}
    with tempfile.TemporaryDirectory(prefix="textpromptir-") as folder:
        command += _area_files(area, folder)
        try:
            answer = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                env=project_environment(),  # without GIMP's own Python settings
                timeout=DIALOG_TIMEOUT,
                check=False,
                **no_console,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise WorkerError(f"The prompt dialog could not be shown ({error}). Run the installer again.") from error
    if answer.returncode == 1:
        raise Cancelled()
    if answer.returncode == 0:
        try:
            chosen = json.loads(answer.stdout.strip().splitlines()[-1])
            prompt, strength = chosen["prompt"], chosen.get("strength")
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            prompt = strength = None
        if isinstance(prompt, str) and prompt.strip():
            return prompt, float(strength) if isinstance(strength, (int, float)) and 0 <= strength <= 1 else None
    why = (answer.stderr.strip().splitlines() or [f"exit code {answer.returncode}"])[-1]
    raise WorkerError(f"The prompt dialog failed: {why}. Run the installer again if this persists.")


def _area_files(area: Image, folder: str) -> list[str]:
    """Write the area's pixels (and mask) into `folder`; the dialog program's arguments that name them."""
    pixels = os.path.join(folder, "area.raw")
    with open(pixels, "wb") as handle:
        handle.write(area.pixels)
    arguments = ["--pixels", pixels, "--width", str(area.width), "--height", str(area.height)]
    arguments += ["--format", area.sample_format, "--order", area.order]
    if area.mask is not None:
        mask = os.path.join(folder, "mask.raw")
        with open(mask, "wb") as handle:
            handle.write(area.mask)
        arguments += ["--mask", mask]
    return arguments


def _strength(config: Gimp.ProcedureConfig) -> float | None:
    """The strength argument (percent) as the worker takes it; below 0: as the prompt's words say."""
    percent = config.get_property("strength")
    return None if percent < 0 else percent / 100


def run(
    procedure: Gimp.Procedure,
    run_mode: Gimp.RunMode,
    image: Gimp.Image,
    drawables: list,
    config: Gimp.ProcedureConfig,
    _data: object,
) -> Gimp.ValueArray:
    try:
        layer = check_drawable(image, drawables)
        area = area_to_restore(image, layer)
        prompt = " ".join((config.get_property("prompt") or "").split())
        if run_mode != Gimp.RunMode.INTERACTIVE and not prompt:
            return procedure.new_return_values(
                Gimp.PDBStatusType.CALLING_ERROR,
                GLib.Error("Give a prompt that says what to restore, e.g. “remove the noise”."),
            )
        missing = missing_engine(Settings.load())
        if missing:  # installed by hand, or the environment is gone: say what to run
            raise Refused(missing)
        pixels = read_image(image, layer, area)
        strength = _strength(config)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            prompt, strength = ask_prompt(layer, pixels)
            # remembered for Filters > Repeat
            config.set_property("prompt", prompt)
            config.set_property("strength", -1.0 if strength is None else strength * 100)
        result = restore(pixels, prompt, strength)
        add_restored_layer(image, layer, area, result, prompt)
    except Cancelled:
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    except Refused as refusal:
        return _failure(procedure, str(refusal))
    except WorkerError as error:
        message = str(error)
        if error.code not in (frames.PROMPT, frames.TOO_LARGE, frames.CANCELLED, "no_worker"):
            message += f"\nThe worker's log: {discovery.log_path()}"
        return _failure(procedure, message)
    except Exception as error:  # a bug must reach the user as a message
        return _failure(procedure, f"TextPromptIR failed unexpectedly: {error!r}")
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


def _failure(procedure: Gimp.Procedure, message: str) -> Gimp.ValueArray:
    Gimp.progress_end()
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


class TextPromptIR(Gimp.PlugIn):
    def do_query_procedures(self) -> list[str]:
        return [PROCEDURE]

    def do_set_i18n(self, _name: str) -> bool:
        return False

    def do_create_procedure(self, name: str) -> Gimp.Procedure:
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label(MENU_LABEL)
        procedure.add_menu_path(MENU_PATH)
        procedure.set_documentation(
            "Restore the layer as a plain-language prompt asks (TextPromptIR)",
            "Removes noise, rain streaks, haze, blur, low light or JPEG artifacts, as the prompt says, from the "
            "active layer (or the selected part of it) and adds the result as a new layer above it. The model "
            "runs in the TextPromptIR worker, started on first use. Non-interactive calls take the prompt as "
            "the 'prompt' argument, and optionally the 'strength' (percent).",
            name,
        )
        procedure.set_attribution("TextPromptIR contributors", "TextPromptIR contributors", "2025")
        procedure.add_string_argument(
            "prompt",
            "Prompt",
            "What to restore, in plain words, e.g. “remove the rain streaks”",
            "",
            GObject.ParamFlags.READWRITE,
        )
        procedure.add_double_argument(
            "strength",
            "Strength",
            "How much of the restoration to keep, 0-100 % (restored * s + original * (1 - s)); "
            "-1: as the prompt's words say (“slightly”: 60 %, otherwise 100 %)",
            -1.0,
            100.0,
            -1.0,
            GObject.ParamFlags.READWRITE,
        )
        return procedure


Gimp.main(TextPromptIR.__gtype__, sys.argv)
