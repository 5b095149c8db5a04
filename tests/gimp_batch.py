"""The batch script that tests/gimp_host.py feeds to gimp-console-3.0 (python-fu-eval) inside the chroot.

It runs the scenarios of $TEXTPROMPTIR_GIMP_SCENARIOS one by one: opens or
builds the image, sets up the layer and selection, calls the plug-in's
procedure through the PDB as a script would, and records for pytest what
came out: the status and message, the layer stack before and after, the
pixels of the source, the selection and the restored layer (raw float RGBA,
as the plug-in sees them), and the layer stack of the XCF saved and opened
again. gimp-console exits 0 whatever happens, so this script writes
`batch-crash.txt` on an error of its own and `done` at the end.
"""

import json
import os
import time
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

PROCEDURE = "python-fu-textpromptir-restore"
FLOAT = "R'G'B'A float"


def layer_stack(image):
    return [
        [layer.get_name(), *layer.get_offsets()[1:], layer.get_width(), layer.get_height()]
        for layer in image.get_layers()
    ]


def pixels(drawable):
    rectangle = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    return bytes(drawable.get_buffer().get(rectangle, 1.0, FLOAT, Gegl.AbyssPolicy.NONE))


def open_image(scenario):
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(scenario["document"]))
    layer = image.get_layers()[0]
    if "precision" in scenario:
        image.convert_precision(getattr(Gimp.Precision, scenario["precision"]))
    if "offset" in scenario:
        layer.set_offsets(*scenario["offset"])
    if "group" in scenario:  # the layer goes into a group; "group": "group" picks the group itself
        group = Gimp.GroupLayer.new(image, "Group")
        image.insert_layer(group, None, 0)
        image.reorder_item(layer, group, 0)
        if scenario["group"] == "group":
            layer = group
    if "rect" in scenario:
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *scenario["rect"])
    if "ellipse" in scenario:
        image.select_ellipse(Gimp.ChannelOps.REPLACE, *scenario["ellipse"])
    return image, layer


def call_procedure(image, layer, scenario, out):
    procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    if procedure is None:
        raise RuntimeError(f"GIMP did not register {PROCEDURE}: the plug-in failed to load")
    config = procedure.create_config()
    interactive = "dialog" in scenario
    if interactive:
        # What the stand-in for the Qt dialog program answers (tests/gimp_host.py: fake_prompt_program).
        with open(os.path.join(os.path.dirname(out), "prompt-answer.txt"), "w") as answer:
            answer.write(scenario["dialog"].get("stdout", ""))
        with open(os.path.join(os.path.dirname(out), "prompt-exit.txt"), "w") as code:
            code.write(str(scenario["dialog"]["exit"]))
    mode = Gimp.RunMode.INTERACTIVE if interactive else Gimp.RunMode.NONINTERACTIVE
    if scenario.get("last_values"):  # Filters > Repeat
        mode = Gimp.RunMode.WITH_LAST_VALS
    config.set_property("run-mode", mode)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [layer])
    if not scenario.get("last_values"):
        config.set_property("prompt", scenario.get("prompt", ""))
        config.set_property("strength", float(scenario.get("strength", -1)))
    started = time.monotonic()
    result = procedure.run(config)
    seconds = time.monotonic() - started
    status = result.index(0)
    record = {"status": status.value_nick, "seconds": seconds}
    if result.length() > 1 and status != Gimp.PDBStatusType.SUCCESS:
        record["message"] = result.index(1)
    return record


def run_scenario(scenario, out):
    name = scenario["name"]
    image, layer = open_image(scenario)
    width, height = image.get_width(), image.get_height()
    record = {"canvas": [width, height], "precision": image.get_precision().value_nick}
    record["layers_before"] = layer_stack(image)
    record["source"] = [*layer.get_offsets()[1:], layer.get_width(), layer.get_height()]
    source_before = pixels(layer) if not layer.is_group() else b""
    with open(os.path.join(out, f"{name}.source.raw"), "wb") as handle:
        handle.write(source_before)
    if not Gimp.Selection.is_empty(image):
        selection = image.get_selection().get_buffer()
        mask = selection.get(Gegl.Rectangle.new(0, 0, width, height), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)
        with open(os.path.join(out, f"{name}.mask.raw"), "wb") as handle:
            handle.write(bytes(mask))
    for _ in range(scenario.get("repeat", 1)):
        record.update(call_procedure(image, layer, scenario, out))
    record["layers_after"] = layer_stack(image)
    if layer.get_parent() is not None:
        record["siblings_after"] = [child.get_name() for child in layer.get_parent().get_children()]
    record["source_unchanged"] = layer.is_group() or pixels(layer) == source_before
    if record["status"] == "success":
        restored = image.get_selected_layers()[0]
        record["restored"] = [restored.get_name(), *restored.get_offsets()[1:]]
        record["restored"] += [restored.get_width(), restored.get_height()]
        record["restored_position"] = image.get_item_position(restored)
        with open(os.path.join(out, f"{name}.result.raw"), "wb") as handle:
            handle.write(pixels(restored))
    xcf = os.path.join(out, f"{name}.xcf")
    Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path(xcf), None)
    image.delete()
    reopened = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(xcf))
    record["xcf_layers"] = layer_stack(reopened)
    reopened.delete()
    return record


def main():
    with open(os.environ["TEXTPROMPTIR_GIMP_SCENARIOS"]) as handle:
        plan = json.load(handle)
    out = plan["out"]
    records = []
    for scenario in plan["scenarios"]:
        try:
            record = run_scenario(scenario, out)
        except Exception:
            record = {"driver_error": traceback.format_exc()}
        records.append({"name": scenario["name"], **record})
        with open(os.path.join(out, "results.json"), "w") as handle:
            json.dump(records, handle, indent=1)
    with open(os.path.join(out, "done"), "w") as handle:
        handle.write("done\n")


try:
    main()
except Exception:
    with open(os.environ["TEXTPROMPTIR_GIMP_SCENARIOS"] + ".crash.txt", "w") as crash:
        crash.write(traceback.format_exc())
    raise
