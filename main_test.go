package main

import (
	"runtime/debug"
	"testing"
)

func TestSetMemoryLimit(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	cases := map[string]struct {
		limit, gomemlimit string
		want              int64
	}{
		"90% of the container's limit": {"268435456", "", 241591905},
		"no limit in the container":    {"", "", 0},
		"an explicit GOMEMLIMIT wins":  {"268435456", "200MiB", 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", tc.gomemlimit)
			if got := setMemoryLimit(tc.limit); got != tc.want {
				t.Errorf("setMemoryLimit(%q) = %d, want %d", tc.limit, got, tc.want)
			}
		})
	}
}
