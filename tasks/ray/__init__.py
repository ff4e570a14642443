"""Ray on Kubernetes through KubeRay: the RayCluster kaiops renders, provisions, watches, diagnoses and drills,
and the Ray Job Submission API it proves a cluster with.

- :mod:`~tasks.ray.manifest`: a :class:`~configs.ray_cluster.RayClusterConfig` rendered to a RayCluster (pure).
- :mod:`~tasks.ray.status`: readiness and suspension read from the RayCluster's status and its Pods (pure).
- :mod:`~tasks.ray.plan`: what applying would change; the Ray autoscaler's fields kept (pure).
- :mod:`~tasks.ray.diagnose`: why a cluster is not ready (conditions, Pod reasons, log tails, Events).
- :mod:`~tasks.ray.provision`: the provisioning steps as Prefect tasks (apply, wait, smoke job, delete).
- :mod:`~tasks.ray.jobs`: Ray jobs over HTTP (submit, follow, the smoke job).
- :mod:`~tasks.ray.drill`: the head-failure drill's steps and verdict.

Not here: the cluster config schema (``configs/ray_cluster.py``), the order of the steps (``flows/provision.py``,
``flows/cluster_drill.py``), the offline validation rules for RayCluster manifests (``tasks/manifests/rules/``),
and Kubernetes verbs (``tasks/kube``). Nothing here runs a KubeRay operator: that is the sandbox's.
"""
