"""Runs scenarios inside a real Krita the way a user would, and writes down what happened.

Reads the scenario file named by TEXTPROMPTIR_KRITA_SCENARIOS. For each one
it opens the document, prepares layers and selection through Krita's API,
triggers the real "Restore with Text Prompt..." action, types the prompt into
the real dialog, moves its strength slider and clicks its preview thumbnail
and buttons (or triggers "Repeat Last Text Restoration"), and then records
the layer stack, the raw pixels of the source, preview and restored layers,
any message shown, the saved .kra and the layer stack after one undo.
Results go to out/results.json.
"""

import json
import os
import signal
import time
import traceback
from pathlib import Path

from krita import Extension, Krita, Selection
from PyQt5.QtCore import QByteArray, QEvent, QPointF, Qt, QTimer
from PyQt5.QtGui import QMouseEvent
from PyQt5.QtWidgets import QApplication, QLabel, QPushButton, QSlider

PLAN = json.loads(Path(os.environ["TEXTPROMPTIR_KRITA_SCENARIOS"]).read_text())
OUT = Path(PLAN["out"])
STEP_MS = 50
WAIT_LIMIT = 90  # seconds any one step may wait before the scenario is recorded as timed out


def widget(name):
    for top in QApplication.topLevelWidgets():
        if top.objectName() == name and top.isVisible():
            return top
    return None


def layers(document):
    def walk(node, depth):
        found = []
        for child in reversed(node.childNodes()):  # top of the stack first
            if child.type() == "selectionmask":
                continue  # Krita's own node for the global selection
            rect = child.bounds()
            found.append([child.name(), child.type(), depth, [rect.x(), rect.y(), rect.width(), rect.height()]])
            found += walk(child, depth + 1)
        return found

    return walk(document.rootNode(), 0)


def plugin():
    return next(e for e in Krita.instance().extensions() if type(e).__name__ == "RestoreExtension")


def find_layer(document, prefix):
    return next((n for n in document.rootNode().childNodes() if n.name().startswith(prefix)), None)


def canvas_pixels(document, node, path):
    path.write_bytes(bytes(node.pixelData(0, 0, document.width(), document.height())))


def ellipse_mask(width, height):
    mask = bytearray(width * height)
    cx, cy = (width - 1) / 2, (height - 1) / 2
    for y in range(height):
        for x in range(width):
            if ((x - cx) / (width / 2)) ** 2 + ((y - cy) / (height / 2)) ** 2 <= 1:
                mask[y * width + x] = 255
    return bytes(mask)


def menu_entries(text):
    """The top-level menus of the main window that hold an entry with this text."""
    menus = []
    for top in Krita.instance().activeWindow().qwindow().menuBar().actions():
        if top.menu() and any(entry.text() == text for entry in top.menu().actions()):
            menus.append(top.text().replace("&", ""))
    return menus


def click(widget, x, y):
    """A left click at x, y of the widget, as the mouse gives it."""
    for kind in (QEvent.MouseButtonPress, QEvent.MouseButtonRelease):
        event = QMouseEvent(kind, QPointF(x, y), Qt.LeftButton, Qt.LeftButton, Qt.NoModifier)
        QApplication.sendEvent(widget, event)


def preview_then_strength(dialog, scenario, record):
    """Wait for the preview, click the thumbnail, move the strength slider, record the preview shown last."""
    preview = dialog.findChild(QLabel, "preview")
    slider = dialog.findChild(QSlider, "strength")
    yield lambda: dialog.shot is not None
    first = dialog.shot
    record["preview_shown"] = preview.pixmap() is not None and not preview.pixmap().isNull()
    record["strength_at_first"] = slider.value()
    click(dialog.findChild(QLabel, "thumbnail"), *scenario["click"])
    slider.setValue(scenario["strength"])
    yield lambda: dialog.shot is not first and dialog.shot.generation == dialog.runner.generation
    shot, region = dialog.shot, dialog.area.region
    record["preview"] = [region.x + shot.x, region.y + shot.y, shot.restored.width, shot.restored.height]
    record["first_preview"] = [region.x + first.x, region.y + first.y]
    record["strength_label"] = dialog.findChild(QLabel, "strength_value").text()
    (OUT / f"{scenario['name']}.preview.raw").write_bytes(bytes(shot.restored.pixels))


def run_scenario(scenario, record):
    app = Krita.instance()
    if scenario.get("check_menu"):  # is the plugin loaded and where is its action?
        record["action"] = app.action("textpromptir_restore") is not None
        record["menus"] = menu_entries("Restore with Text Prompt...")
        return
    if "create" in scenario:  # a document in a depth that no file on disk opens as, e.g. RGBA F32
        spec = scenario["create"]
        document = app.createDocument(spec["width"], spec["height"], scenario["name"], "RGBA", spec["depth"], "", 72.0)
        app.activeWindow().addView(document)
        background = document.topLevelNodes()[0]
        background.setPixelData(QByteArray(Path(spec["raw"]).read_bytes()), 0, 0, spec["width"], spec["height"])
        document.setActiveNode(background)
    else:
        document = app.openDocument(scenario["document"])
        app.activeWindow().addView(document)
    document.waitForDone()
    yield 0.2
    source = document.activeNode()
    if "offset" in scenario:
        source.move(*scenario["offset"])
        document.waitForDone()
    if "rect" in scenario:
        selection = Selection()
        selection.select(*scenario["rect"], 255)
        document.setSelection(selection)
    if "ellipse" in scenario:
        x, y, w, h = scenario["ellipse"]
        selection = Selection()
        selection.select(x, y, w, h, 255)
        selection.setPixelData(QByteArray(ellipse_mask(w, h)), x, y, w, h)
        document.setSelection(selection)
    if "group" in scenario:
        group = document.createNode("a group", "grouplayer")
        document.rootNode().addChildNode(group, None)
        document.setActiveNode(group)
        source = group
    yield 0.3
    name = scenario["name"]
    record["depth"] = source.colorDepth()
    record["canvas"] = [document.width(), document.height()]
    record["layers_before"] = layers(document)
    if source.type() == "paintlayer":
        canvas_pixels(document, source, OUT / f"{name}.source.raw")
    if document.selection() is not None:
        (OUT / f"{name}.mask.raw").write_bytes(
            bytes(document.selection().pixelData(0, 0, document.width(), document.height()))
        )

    started = from_menu = time.monotonic()
    if scenario.get("repeat"):  # the last prompt and strength again, without the dialog
        app.action("textpromptir_repeat").trigger()
        yield lambda: plugin().job is None and widget("textpromptir_progress") is None
    else:
        app.action("textpromptir_restore").trigger()
    yield lambda: widget("textpromptir_prompt_dialog") or widget("textpromptir_error") or scenario.get("repeat")
    dialog = widget("textpromptir_prompt_dialog")
    if dialog is not None:
        record["device_at_first"] = dialog.device_label.text()
        dialog.field.setEditText(scenario["prompt"])
        yield (
            lambda: (
                not dialog.feedback.text().startswith("Reading")
                and not dialog.device_label.text().startswith("Engine: loading")
            )
        )
        if "strength" in scenario:
            yield from preview_then_strength(dialog, scenario, record)
        record["feedback"] = dialog.feedback.text()
        record["device"] = dialog.device_label.text()
        record["restore_enabled"] = dialog.restore_button.isEnabled()
        if not dialog.restore_button.isEnabled():
            dialog.findChild(type(dialog.restore_button), "cancel").click()
        else:
            started = time.monotonic()
            dialog.restore_button.click()
            yield lambda: widget("textpromptir_progress") is not None
            progress = widget("textpromptir_progress")
            if scenario.get("then") in ("cancel", "kill_worker"):
                yield lambda: progress.value() >= 1
                if scenario["then"] == "cancel":
                    next(b for b in progress.findChildren(QPushButton) if b.isVisible()).click()  # the user's click
                else:
                    info = json.loads((Path(os.environ["TEXTPROMPTIR_RUNTIME_DIR"]) / "worker.json").read_text())
                    os.kill(info["pid"], signal.SIGKILL)
                    record["killed_worker"] = info["pid"]
            yield lambda: widget("textpromptir_progress") is None and plugin().job is None
            record["seconds"] = time.monotonic() - started
    record["seconds_from_menu"] = time.monotonic() - from_menu
    yield 0.5
    box = widget("textpromptir_error")
    if box is not None:
        record["message"] = box.text()
        record["details"] = box.detailedText()
        copy = box.findChild(QPushButton, "textpromptir_copy_command")
        if copy is not None:  # the message says what to run: the user copies it
            copy.click()
            record["clipboard"] = QApplication.clipboard().text()
        box.close()
    document.waitForDone()
    record["layers_after"] = layers(document)
    restored = find_layer(document, "Restored:")
    if restored is not None:
        record["restored_depth"] = restored.colorDepth()
        canvas_pixels(document, restored, OUT / f"{name}.result.raw")
        document.setBatchmode(True)
        document.saveAs(str(OUT / f"{name}.kra"))
        document.waitForDone()
        app.action("edit_undo").trigger()
        yield 0.5
        document.waitForDone()
        record["layers_after_undo"] = layers(document)
    document.setModified(False)
    document.close()
    yield 0.2


class Driver(Extension):
    def setup(self):
        pass

    def createActions(self, window):
        if not hasattr(self, "runner"):
            QTimer.singleShot(1000, self.start)

    def start(self):
        Krita.instance().setBatchmode(True)
        self.results = []
        self.steps = self.all_scenarios()
        self.waiting = None
        self.since = time.monotonic()
        self.timer = QTimer()
        self.timer.timeout.connect(self.tick)
        self.timer.start(STEP_MS)

    def all_scenarios(self):
        for scenario in PLAN["scenarios"]:
            record = {"name": scenario["name"]}
            self.results.append(record)
            try:
                yield from run_scenario(scenario, record)
            except Exception:
                record["driver_error"] = traceback.format_exc()
                for top in QApplication.topLevelWidgets():  # leave no dialog behind for the next scenario
                    if top.objectName().startswith("textpromptir") and top.isVisible():
                        top.close()
            self.save()

    def save(self):
        (OUT / "results.json").write_text(json.dumps(self.results, indent=1))

    def ready(self):
        if isinstance(self.waiting, (int, float)):
            return time.monotonic() >= self.waiting
        return self.waiting is None or bool(self.waiting())

    def tick(self):
        try:
            while True:
                timed_out = time.monotonic() - self.since > WAIT_LIMIT
                if not timed_out and not self.ready():
                    return
                if timed_out:
                    step = self.steps.throw(TimeoutError(f"a step waited more than {WAIT_LIMIT} s"))
                else:
                    step = next(self.steps)
                self.since = time.monotonic()
                self.waiting = time.monotonic() + step if isinstance(step, (int, float)) else step
        except StopIteration:
            self.timer.stop()
            self.save()
            (OUT / "done").write_text("ok")
            Krita.instance().action("file_quit").trigger()
        except Exception:
            (OUT / "driver-crash.txt").write_text(traceback.format_exc())
            self.timer.stop()
            Krita.instance().action("file_quit").trigger()


Krita.instance().addExtension(Driver(Krita.instance()))
