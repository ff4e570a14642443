"""The Kubernetes API, the way kaiops uses it (see :mod:`tasks.kube.verbs`)."""

from tasks.kube.verbs import *  # noqa: F403
from tasks.kube.verbs import _translate, list_objects, not_true_conditions  # noqa: F401
