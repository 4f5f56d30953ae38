"""The `picodaq` command (and `python -m picodaq`): picodaq.cli.main, with a Ctrl-C while its modules
are still loading as quiet as one later (no traceback of an import cut short)."""

from __future__ import annotations

import sys


def main() -> int:
    try:
        from .cli.main import main as cli_main

        return cli_main()
    except KeyboardInterrupt:  # before cli.main could catch it: loading, or parsing the arguments
        print("picodaq: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
