"""The real KServe control plane in the sandbox: the release's own manifests, rendered and adjusted for a sandbox.

What it is: :mod:`sandbox.kserve_upstream.release` renders ``config/overlays/standalone/kserve`` and
``config/runtimes`` of ``github.com/kserve/kserve`` at the pinned release with the release's own kustomizations
(``kubectl kustomize``) and applies only the changes a sandbox needs (each listed in README.md beside this file).
The service that runs the manager is ``sandbox/services/kserve_controller.py`` (service ``kserve-controller``).
What it is not: an emulation — the emulated controller is ``sandbox/kserve/`` (service ``kserve``), which the
launcher stops whenever this one starts, and the other way round.
"""
