//go:build tools

// Package tools pins VictoriaLogs' single-node server so `go mod tidy` keeps its dependencies.
package tools

import _ "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs"
