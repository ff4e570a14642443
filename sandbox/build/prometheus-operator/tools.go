//go:build tools

// Package tools pins the Prometheus Operator release the sandbox runs, and the Prometheus server its Pods run. The operator's own go.mod replaces
// its two sub-modules (pkg/apis/monitoring, pkg/client) with local directories, so `go install ...@v0.89.0`
// is refused; this wrapper requires the three modules at the same published version instead, and
// build.sh builds cmd/operator and cmd/prometheus-config-reloader from it. The blank imports only keep
// `go mod tidy` from dropping the requirements (a main package cannot be imported for real).
// Prometheus itself is github.com/prometheus/prometheus at the version the operator's go.mod requires
// (v0.309.1 = Prometheus v3.9.1): Debian's prometheus 2.42 is built without Kubernetes service discovery
// ("field kubernetes_sd_configs not found"), so it cannot read what the operator writes.
package tools

import (
	_ "github.com/prometheus-operator/prometheus-operator/cmd/operator"
	_ "github.com/prometheus-operator/prometheus-operator/cmd/prometheus-config-reloader"
	_ "github.com/prometheus/prometheus/cmd/prometheus"
)
