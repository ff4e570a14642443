"""Monitoring that would really fire: what the operators create, what the components export, what fires now.

- :mod:`.targets`: the Services and Pods KubeRay v1.6.2, KServe v0.20.0 and Knative Serving v0.48.1 create,
  with the labels and port names they really carry (each with its upstream file and line);
- :mod:`.selectors`: a ServiceMonitor/PodMonitor selector compared with those objects (pure logic);
- :mod:`.catalogue`: the metric names each component exports at the pinned versions (``catalogue.json``,
  regenerated from the module sources by :mod:`.extract`), and the nearest real name of an unknown one;
- :mod:`.promql`: PrometheusRule expressions parsed by Prometheus's own parser (``promtool check rules``)
  and the metric names they use;
- :mod:`.live`: the same checks against a live Prometheus: which series exist now and which alerts would
  fire if evaluated now.

Not here: scraping or alerting itself (Prometheus and the Prometheus Operator do that), and the CRD schemas
(``configs/crds.yaml`` pins them; :mod:`tasks.manifests` checks structure).
"""
