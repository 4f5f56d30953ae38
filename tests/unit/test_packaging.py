"""What `pip install picodaq` ships: every folder of the package, code or data, and every file in it.

A folder left out of pyproject.toml's `packages` works in the editable checkout and is missing from
a wheel (setuptools warns that it "would be ignored"): the chip images, the rp2040js runner or the
live view's page would then be gone for a user who installed from a wheel."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def setuptools_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def package_folders() -> dict[str, Path]:
    """Each listed package and the folder it comes from (package-dir maps the roots)."""
    cfg = setuptools_config()
    roots = {name: ROOT / path for name, path in cfg["package-dir"].items()}
    out = {}
    for pkg in cfg["packages"]:
        root = max((r for r in roots if pkg == r or pkg.startswith(r + ".")), key=len)
        out[pkg] = roots[root].joinpath(*pkg[len(root) :].split(".")[1:])
    return out


def test_every_folder_of_the_package_is_listed():
    listed = {p.resolve() for p in package_folders().values()}
    for top in (ROOT / "host" / "picodaq", ROOT / "firmware"):
        for d in [top, *top.rglob("*")]:
            if d.is_dir() and d.name != "__pycache__" and any(f.is_file() for f in d.iterdir()):
                assert d.resolve() in listed, f"{d.relative_to(ROOT)} is not in pyproject.toml's packages"


def test_every_data_file_is_in_the_package_data():
    """Every file but code in a package folder ships (firmware/README.md, for the repository's readers, aside)."""
    data = setuptools_config()["package-data"]
    for pkg, folder in package_folders().items():
        for f in folder.iterdir():
            if not f.is_file() or f.suffix == ".py" or (pkg == "picodaq._firmware" and f.name == "README.md"):
                continue
            patterns = data.get(pkg, [])
            assert any(fnmatch.fnmatch(f.name, p) for p in patterns), (
                f"{f.relative_to(ROOT)} would be left out of a wheel (package-data of {pkg}: {patterns})"
            )
