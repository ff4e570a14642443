// Command coredns is upstream CoreDNS (github.com/coredns/coredns, pinned in go.mod) with only the plugins
// the sandbox's cluster DNS uses, registered the way upstream's own main registers all of them
// (core/plugin/zplugin.go): blank imports. The directive order stays upstream's (core/dnsserver).
// The set matches kubeadm's default Corefile minus `forward`: the sandbox answers cluster.local only.
package main

import (
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/template"

	"github.com/coredns/coredns/coremain"
)

func main() {
	coremain.Run()
}
