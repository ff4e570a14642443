// Command kube-controller-manager is the upstream Kubernetes controller manager (Deployments, ReplicaSets,
// Jobs, CronJobs, garbage collection, namespace deletion, ServiceAccounts and tokens, EndpointSlices),
// built from the same pinned release as the sandbox's kube-apiserver. kaiops runs it only in its sandbox.
package main

import (
	"os"
	_ "time/tzdata" // CronJob time zones, as upstream's main

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-controller-manager/app"
)

func main() {
	os.Exit(cli.Run(app.NewControllerManagerCommand()))
}
