// Package prometheus exists only so that this module has a package; the
// binaries it builds (promtool, and the prometheus server hack/dashboard-shot.sh
// scrapes a run into) are listed in the tool block of go.mod.
package prometheus
