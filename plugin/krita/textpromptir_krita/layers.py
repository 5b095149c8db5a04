"""Reading a paint layer's pixels (or a selection on it) from Krita, and adding the restored layer.

Krita hands out integer pixels as BGRA and float pixels as RGBA, in canvas
coordinates; the worker takes either order, so pixels travel untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from textpromptir_client.client import Image
from textpromptir_client.qt import QtCore
from textpromptir_client.rules import CONTEXT, result_layer_name, size_refusal

SAMPLE_FORMATS = {"U8": ("u8", "BGRA"), "U16": ("u16", "BGRA"), "F16": ("f16", "RGBA"), "F32": ("f32", "RGBA")}


class LayerRefused(Exception):
    """The active layer cannot be restored; the message says what to do instead."""


@dataclass
class Region:
    x: int
    y: int
    width: int
    height: int


def check_layer(document: object, node: object) -> tuple[str, str]:
    """The (sample format, order) of a restorable layer, or LayerRefused saying why not."""
    if document is None:
        raise LayerRefused("Open an image first.")
    if node is None or node.type() != "paintlayer":
        kind = node.type() if node is not None else "nothing"
        raise LayerRefused(
            f"Select a paint layer to restore (the active layer is a {kind}). Group, vector, filter and "
            "file layers have no pixels of their own: convert the layer to a paint layer first."
        )
    if node.locked():
        raise LayerRefused("The active layer is locked; unlock it or pick another layer.")
    if node.colorModel() != "RGBA" or node.colorDepth() not in SAMPLE_FORMATS:
        raise LayerRefused(
            f"TextPromptIR restores RGB layers; this one is {node.colorModel()} {node.colorDepth()}. "
            "Convert it with Image > Convert Image Color Space (RGB/Alpha), or work on an RGB copy."
        )
    return SAMPLE_FORMATS[node.colorDepth()]


def region_to_restore(document: object, node: object) -> tuple[Region, bool]:
    """The canvas rectangle to send, and whether a selection limits what is painted."""
    canvas = QtCore.QRect(0, 0, document.width(), document.height())
    selection = document.selection()
    if selection is not None and selection.width() > 0 and selection.height() > 0:
        area = QtCore.QRect(selection.x(), selection.y(), selection.width(), selection.height())
        area = area.adjusted(-CONTEXT, -CONTEXT, CONTEXT, CONTEXT).intersected(canvas)
        masked = True
    else:
        area = node.bounds().intersected(canvas)
        masked = False
    if area.isEmpty():
        raise LayerRefused("There is nothing to restore: the layer is empty here (or the selection is off the canvas).")
    refusal = size_refusal(area.width(), area.height())
    if refusal:
        raise LayerRefused(refusal)
    return Region(area.x(), area.y(), area.width(), area.height()), masked


@dataclass
class LayerArea:
    """The area of a layer that a restoration sends, read a window at a time (the dialog's preview reads a few)."""

    node: object
    selection: object | None  # limits what is painted
    region: Region
    sample_format: str
    order: str

    @property
    def width(self) -> int:
        return self.region.width

    @property
    def height(self) -> int:
        return self.region.height

    def read(self, x: int, y: int, width: int, height: int) -> Image:
        """A window of the area (x, y from its top left corner), with the selection over it."""
        left, top = self.region.x + x, self.region.y + y
        pixels = bytes(self.node.pixelData(left, top, width, height))
        mask = None if self.selection is None else bytes(self.selection.pixelData(left, top, width, height))
        return Image(pixels, width, height, self.sample_format, self.order, mask)


def layer_area(document: object, node: object) -> LayerArea:
    """The area of the active layer to restore, or LayerRefused saying why it cannot be."""
    sample_format, order = check_layer(document, node)
    region, masked = region_to_restore(document, node)
    return LayerArea(node, document.selection() if masked else None, region, sample_format, order)


def read_image(document: object, node: object) -> tuple[Image, Region]:
    area = layer_area(document, node)
    return area.read(0, 0, area.width, area.height), area.region


def add_restored_layer(document: object, source: object, region: Region, image: Image, prompt: str) -> object:
    """Add the result as a new paint layer right above `source`: one undo step removes it."""
    layer = document.createNode(result_layer_name(prompt), "paintlayer")
    if (layer.colorModel(), layer.colorDepth()) != (source.colorModel(), source.colorDepth()):
        layer.setColorSpace(source.colorModel(), source.colorDepth(), source.colorProfile())
    # Painted before it joins the document, so adding it is the only undoable change.
    layer.setPixelData(QtCore.QByteArray(bytes(image.pixels)), region.x, region.y, region.width, region.height)
    parent = source.parentNode() or document.rootNode()
    parent.addChildNode(layer, source)
    document.setActiveNode(layer)
    document.refreshProjection()
    return layer
