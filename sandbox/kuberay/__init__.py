"""The sandbox's KubeRay emulation: a RayCluster controller that runs a real local Ray head per RayCluster.

What it is: a process (``python -m sandbox.kuberay``, the ``kuberay`` sandbox service) that watches RayClusters
on the real sandbox apiserver, turns each head group's ``rayStartParams`` into ``ray start`` flags as KubeRay's
pod.go does (:mod:`.startparams`), starts the head (:mod:`.heads`), counts emulated workers, creates the owned
head Service, records Events and writes ``status`` as KubeRay v1.7's ``calculateStatus`` does (:mod:`.status`).

What it is not: KubeRay. No Pods are created, workers are counted rather than run, there is no autoscaler.
See README.md in this directory for exactly what is emulated.
"""
