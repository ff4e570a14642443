"""The sandbox gateway: the one network stand-in, a small HTTP proxy implementing part of the Gateway API.

What it is: a controller for GatewayClasses whose ``controllerName`` is ``sandbox.kaiops.io/gateway-controller``
that serves their Gateways' HTTP listeners on one loopback port, routes by the attached HTTPRoutes (hostnames,
path/header/method matches, weighted ``backendRefs`` to Services, request header filters, request timeouts)
straight to the Services' ready endpoints (Pod IPs: the host routes the Pod range), writes the status a
conformant implementation writes, and exports per-backend request metrics for Prometheus. It also implements
Knative's networking Ingress (KIngress) for ingress class ``gateway.sandbox.kaiops.io``.
:mod:`sandbox.gateway.model` is the pure Gateway API routing and status logic, :mod:`sandbox.gateway.kingress`
the pure KIngress logic, :mod:`sandbox.gateway.kingress_controller` the KIngress watch/probe/status loop and
:mod:`sandbox.gateway.server` the process.
What it is not: Envoy, nor a full Gateway API implementation — README.md beside this file lists what is not
implemented.
"""
