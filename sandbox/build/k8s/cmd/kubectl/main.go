// Command kubectl is the upstream kubectl, built from the same pinned release as the sandbox's
// kube-apiserver. kaiops uses it only as the baseline in benchmarks and for debugging the sandbox.
package main

import (
	"k8s.io/component-base/cli"
	"k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"
)

func main() {
	if err := cli.RunNoErrOutput(cmd.NewDefaultKubectlCommand()); err != nil {
		util.CheckErr(err)
	}
}
