//go:build tools

// Pins the promtool command in this module's dependency graph.
package tools

import _ "github.com/prometheus/prometheus/cmd/promtool"
