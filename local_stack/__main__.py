"""`python -m local_stack` (what `make run` runs). `--no-demo` starts the stack without demo changes; `--pos r-series`
(`make run RUN_ARGS="--pos r-series"`) runs it with the R-Series simulator and an R-Series connection."""

from __future__ import annotations

import argparse
import signal
import sys
import warnings
from types import FrameType

from local_stack.stack import LocalStack, StackConfig, narrate


def main(argv: list[str] | None = None) -> int:
    # Metrics are off locally, so Powertools never flushes dimensions and warns on every reuse; nothing to act on.
    warnings.filterwarnings("ignore", message="Dimension .* has already been added")
    parser = argparse.ArgumentParser(prog="python -m local_stack", description=__doc__)
    parser.add_argument("--no-demo", action="store_true", help="do not make demo changes in the simulators")
    parser.add_argument(
        "--pos", choices=["x-series", "r-series"], default="x-series", help="the POS to simulate (default x-series)"
    )
    args = parser.parse_args(argv)

    config = StackConfig(run_demo=not args.no_demo)
    if args.pos == "r-series":
        from local_stack.rseries_stack import RSeriesLocalStack

        stack: LocalStack = RSeriesLocalStack(config)
    else:
        stack = LocalStack(config)

    def _stop(signum: int, frame: FrameType | None) -> None:
        stack.stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        stack.start()
    except OSError as exc:
        print(f"cannot start the local stack: {exc} (is another `make run` using the ports?)", file=sys.stderr)
        stack.stop()
        return 1
    print(stack.banner(), flush=True)
    narrate("ready")
    try:
        if args.no_demo:
            stack.stopping.wait()
        else:
            stack.run_demo()
    finally:
        narrate("stopping")
        stack.stop()
        narrate("stopped: every server and worker is shut down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
