"""Entry point for ``python -m benchmarks``: hands the command line to the runner."""

import sys

from benchmarks.runner import main

if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
