"""``python -m sandbox.kuberay --kubeconfig K --root DIR --health-file F``: run the emulated controller."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from sandbox.kuberay.controller import Controller


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sandbox.kuberay", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--root", required=True, type=Path, help="heads' temp dirs and logs (keep it short)")
    parser.add_argument("--health-file", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    args.root.mkdir(parents=True, exist_ok=True)
    controller = Controller(args.kubeconfig, args.root, args.health_file)

    def on_term(signum, frame) -> None:
        controller.shutdown()
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    controller.run()


if __name__ == "__main__":
    main()
