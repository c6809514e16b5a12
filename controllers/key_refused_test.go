package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// TestKeyRefusedCreateSkipsRecovery: a CreateKey that KMS refused (throttled,
// invalid) made no key, so the retry creates at once instead of scanning the
// account's keys for one; a transient failure may hide a key, so its retry
// scans. A restart forgets refusals and scans.
func TestKeyRefusedCreateSkipsRecovery(t *testing.T) {
	throttled := kmsclient.NewError("CreateKey", kmsclient.Throttled, "ThrottlingException", "Rate exceeded")
	internal := kmsclient.NewError("CreateKey", kmsclient.Transient, "KMSInternalException", "internal error")
	scanThenCreate := []string{"ListKeys", "CreateKey", "EnableKeyRotation"}
	cases := map[string]struct {
		err     error
		restart bool
		calls   []string
	}{
		"Throttled":             {err: throttled, calls: []string{"CreateKey", "EnableKeyRotation"}},
		"ThrottledThenRestart":  {err: throttled, restart: true, calls: scanThenCreate},
		"TransientMayHaveMade":  {err: internal, calls: scanThenCreate},
		"TransientThenThrottle": {err: internal, calls: scanThenCreate},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := newKeyEnv(t, newKey(withDescription("d"), withRotation(365)))
			e.kms.Fail("CreateKey", tc.err, 1)
			if _, err := e.reconcile(); err == nil {
				t.Fatal("reconcile with a failing CreateKey returned nil")
			}
			if name == "TransientThenThrottle" {
				// The scan after the transient failure finds nothing; the
				// refused attempt that follows needs no second scan.
				e.kms.Fail("CreateKey", throttled, 1)
				if _, err := e.reconcile(); err == nil {
					t.Fatal("reconcile with a throttled CreateKey returned nil")
				}
				tc.calls = []string{"CreateKey", "EnableKeyRotation"}
			}
			if tc.restart {
				e.restart()
			}
			e.kms.ResetCalls()
			e.mustReconcile()
			if diff := cmp.Diff(tc.calls, e.kms.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			if keys := e.kms.Keys(); len(keys) != 1 || e.get().Status.KeyID != keys[0].ID {
				t.Errorf("KMS keys %+v, status.keyID %q: want exactly one, recorded", keys, e.get().Status.KeyID)
			}
		})
	}
}
