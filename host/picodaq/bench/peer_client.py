"""A BrainFlow user's program, as the peer figure (peer.py) runs it in its own process: the Cyton
driver streams from a serial port while the program takes the data every 100 ms.

    python -m picodaq.bench.peer_client --port /tmp/cyton --out data.npz [--poll 0.1]

It prints `streaming` once the stream has started, then polls `get_board_data()`
every `poll` seconds (the waits are a select() on stdin: the stream stops when
stdin closes or gets a line), keeping every chunk. At the end it stops the
stream, takes what is left, and saves the package numbers, the 8 EEG channels
(in BrainFlow's microvolts) and the end bytes, plus the cumulative row count
at each poll with its monotonic time. BrainFlow's own log goes to stderr at
its default level (info), as a user would see it.
"""

from __future__ import annotations

import argparse
import select
import sys
import time

import numpy as np


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m picodaq.bench.peer_client")
    ap.add_argument("--port", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--poll", type=float, default=0.1)
    a = ap.parse_args(argv)
    try:
        from brainflow.board_shim import BoardIds, BoardShim, BrainFlowInputParams
    except ImportError as e:
        print(f"brainflow is not installed ({e})", file=sys.stderr)
        return 3
    params = BrainFlowInputParams()
    params.serial_port = a.port
    board_id = BoardIds.CYTON_BOARD.value
    descr = BoardShim.get_board_descr(board_id)
    keep = [descr["package_num_channel"], *descr["eeg_channels"], descr["other_channels"][0]]
    board = BoardShim(board_id, params)
    board.prepare_session()
    board.start_stream()
    print(f"streaming {time.monotonic()!r}", flush=True)
    chunks = []
    polls: list[tuple[float, int]] = []
    rows = 0
    try:
        while True:
            r, _, _ = select.select([sys.stdin], [], [], a.poll)
            if r:
                break  # a line, or stdin closed: stop
            data = board.get_board_data()
            chunks.append(data)
            rows += data.shape[1]
            polls.append((time.monotonic(), rows))
    finally:
        board.stop_stream()
        data = board.get_board_data()
        chunks.append(data)
        rows += data.shape[1]
        polls.append((time.monotonic(), rows))
        board.release_session()
    every = np.concatenate(chunks, axis=1)
    np.savez(a.out, rows=every[keep].T, polls=np.array(polls, dtype=np.float64))
    print(f"rows {rows}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
