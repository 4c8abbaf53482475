//go:build tools

// Package tools pins VictoriaMetrics' single-node server and vmalert so `go mod tidy` keeps their dependencies.
package tools

import (
	_ "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"
	_ "github.com/VictoriaMetrics/VictoriaMetrics/app/vmalert"
)
