"""The LocalModelCache status emulation (``sandbox/localmodel``): downloads node copies with KServe's code.

Healthy once it has listed LocalModelCaches (it writes its pid to ``localmodel/healthy``).
"""

from __future__ import annotations

from sandbox.services.base import ControllerService


class LocalModel(ControllerService):
    name = "localmodel"
    module = "sandbox.localmodel"
