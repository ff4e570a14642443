// Command etcd is the upstream etcd server, built from the Go module proxy at the version pinned in
// go.mod. kaiops runs it only behind the sandbox's kube-apiserver.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
