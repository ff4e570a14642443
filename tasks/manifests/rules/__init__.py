"""Domain rules the apiserver cannot see, one module per concern.

- :mod:`.ray`, :mod:`.ray_ports`, :mod:`.ray_start_params`: KubeRay RayCluster/RayJob/RayService
  (start parameters, head ports, probes, operator-managed env vars, name limits); :mod:`.ray_env`: RAY_*
  variables that Ray and KubeRay never read;
- :mod:`.kserve`: InferenceService, ServingRuntime, LocalModelCache (field names, canary modes, storage URIs);
- :mod:`.core`: Secrets and ServiceAccounts;
- :mod:`.monitoring_targets`: ServiceMonitor/PodMonitor selectors and ports against the objects the
  operators create; :mod:`.monitoring_alerts`: PrometheusRule expressions (promtool) and their metrics.

Each rule is a small function registered with :func:`.base.rule`; :func:`run` runs those that apply to an
object. Importing this package registers all of them.
"""

from tasks.manifests.rules import (
    core,
    kserve,
    monitoring_alerts,
    monitoring_targets,
    ray,
    ray_env,
    ray_ports,
    ray_start_params,
)
from tasks.manifests.rules.base import REGISTRY, Manifest, run

__all__ = ["REGISTRY", "Manifest", "core", "kserve", "monitoring_alerts", "monitoring_targets", "ray", "ray_env",
           "ray_ports", "ray_start_params", "run"]
