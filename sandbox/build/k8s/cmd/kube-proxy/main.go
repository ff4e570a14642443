// Command kube-proxy is the upstream Kubernetes service proxy (nftables mode in the sandbox), built from the
// same pinned release as the sandbox's kube-apiserver. kaiops runs it only inside its sandbox's node netns.
package main

import (
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"
	_ "k8s.io/component-base/metrics/prometheus/version"
	"k8s.io/kubernetes/cmd/kube-proxy/app"
)

func main() {
	os.Exit(cli.Run(app.NewProxyCommand()))
}
