//go:build tools

// Package tools pins actionlint's main package (the linter of .github/workflows/) so `go mod tidy` keeps its
// dependencies.
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
