"""``python -m sandbox.kserve``: run the sandbox KServe controller (see :mod:`sandbox.kserve.controller`)."""

from sandbox.kserve.controller import main

main()
