//go:build tools

// Package tools pins the Knative Serving commands this wrapper module builds (see regen.sh and ../build.sh);
// the build tag keeps it out of every build, `go mod tidy` still records their dependencies.
package tools

import (
	_ "knative.dev/serving/cmd/activator"
	_ "knative.dev/serving/cmd/autoscaler"
	_ "knative.dev/serving/cmd/controller"
	_ "knative.dev/serving/cmd/queue"
	_ "knative.dev/serving/cmd/webhook"
)
