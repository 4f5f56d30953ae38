"""`picodaq bench`: the command's handler and arguments (the figures live in picodaq.bench)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..bench import report
from ..bench.runner import FIGURES, FULL, QUICK, run, stderr_progress


def _figures(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in FIGURES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown figure {', '.join(unknown) or repr(text)}; choose from {', '.join(FIGURES)}"
        )
    return names


def args_bench(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="small sizes and short streams: seconds, not minutes")
    p.add_argument(
        "--only", type=_figures, metavar="FIGURE[,FIGURE]", help="measure only these figures: " + ", ".join(FIGURES)
    )
    p.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH")
    p.add_argument(
        "--readme",
        metavar="PATH",
        help=f"rewrite the results table between the {report.START} and {report.END} markers of PATH (a README.md)",
    )
    p.add_argument(
        "--from-json",
        metavar="PATH",
        help="measure nothing: render the results in PATH (with --readme, into the README)",
    )


def _fail(message: str) -> int:
    print(f"picodaq bench: {message}", file=sys.stderr, flush=True)
    return 2


def _writable(path: Path, what: str) -> str | None:
    """Why path cannot be written (None if it can), found before any minute is spent measuring."""
    if path.is_dir():
        return f"{what} {path}: is a directory"
    if path.parent.exists() and not path.parent.is_dir():
        return f"{what} {path}: not writable ({path.parent} is a file, not a folder)"
    if not path.parent.is_dir():
        return f"{what} {path}: folder {path.parent} does not exist"
    existed = path.exists()
    try:
        with open(path, "a"):
            pass
    except OSError as e:
        return f"{what} {path}: not writable ({e.strerror or e})"
    if not existed:
        path.unlink()
    return None


def do_bench(args: argparse.Namespace) -> int:
    json_path = Path(args.json) if args.json else None
    readme = Path(args.readme) if args.readme else None
    if json_path is not None and (why := _writable(json_path, "--json")):
        return _fail(why)
    if readme is not None:
        if not readme.is_file():
            return _fail(f"--readme {readme}: no such file")
        if why := _writable(readme, "--readme"):
            return _fail(why)
    if args.from_json:
        try:
            doc = json.loads(Path(args.from_json).read_text())
            report.markdown(doc)  # every figure it holds renders, or the file is not a results file
            if not report.rows(doc):  # and an empty table must never replace a README's results
                raise ValueError("it holds no figures")
        except OSError as e:
            return _fail(f"--from-json {args.from_json}: cannot read ({e.strerror or e})")
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            return _fail(f"--from-json {args.from_json}: not a picodaq bench results file ({type(e).__name__}: {e})")
    else:
        doc = run(args.only or list(FIGURES), QUICK if args.quick else FULL, stderr_progress)
    if json_path is not None:
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"picodaq bench: wrote {json_path}", file=sys.stderr, flush=True)
    if readme is not None:
        report.update_readme(readme, doc)
        print(f"picodaq bench: updated the results table in {readme}", file=sys.stderr, flush=True)
    sys.stdout.write(report.text(doc))
    return 0
