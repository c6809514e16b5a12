// Package k8s exists only so that this module has a package; the binaries it
// builds are listed in the tool block of go.mod.
package k8s
