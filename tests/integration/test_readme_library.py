"""The README's "Library" examples run as printed, against an emulated board and a recording of it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from cli_helpers import picodaq

README = Path(__file__).resolve().parents[2] / "README.md"


def library_examples() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Library") :]
    section = section[: section.index("\n## ", 4)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_library_section_imports_only_the_public_api():
    import picodaq

    blocks = library_examples()
    assert len(blocks) == 2
    for code in blocks:
        for names in re.findall(r"^from picodaq import (.+)$", code, re.M):
            assert {n.strip() for n in names.split(",")} <= set(picodaq.__all__)
        assert not re.search(r"^(from|import) picodaq\.", code, re.M)  # no module paths


def test_the_library_examples_run_as_printed(make_board, tmp_path):
    board = make_board()
    live, offline = library_examples()
    r = subprocess.run(
        [sys.executable, "-c", live.replace("/dev/ttyACM0", board.port)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "0 instants lost" in r.stdout
    rec = picodaq("record", "--port", board.port, "--seconds", "1", "--out", "run.tlv", "--quiet", cwd=tmp_path)
    assert rec.returncode == 0, rec.stderr
    r = subprocess.run([sys.executable, "-c", offline], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "samples_lost=0" in r.stdout and "'HELLO'" in r.stdout
