//go:build tools

// Package tools pins the KServe commands this wrapper module builds (see regen.sh and ../build.sh);
// the build tag keeps it out of every build, `go mod tidy` still records their dependencies.
package tools

import (
	_ "github.com/kserve/kserve/cmd/localmodel"
	_ "github.com/kserve/kserve/cmd/localmodelnode"
	_ "github.com/kserve/kserve/cmd/manager"
)
