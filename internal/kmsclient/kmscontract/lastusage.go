package kmscontract

import (
	"context"
	"testing"
	"time"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// KeyUser is what a model offers beyond kmsclient.API for the last-usage
// case: a successful cryptographic call with a key (op Encrypt, Decrypt,
// ...), as an application makes it. The operator never makes one.
type KeyUser interface {
	UseKey(ctx context.Context, keyID, op string) error
}

func lastUsage() Case {
	return Case{
		Reason: "GetKeyLastUsage shows no use of a new key, tracked since its creation; after an Encrypt, that operation at about KMS's now; a disabled key refuses to be used and its last use stays; alias names (no key ids) and unknown keys are NotFound.",
		Run: func(t *testing.T, api kmsclient.API) any {
			user, ok := api.(KeyUser)
			if !ok {
				t.Fatalf("%T cannot use keys: a model of KMS must implement kmscontract.KeyUser", api)
			}
			k := create(t, api, kmsclient.CreateKeyInput{})
			var fresh *kmsclient.LastUsage
			eventually(t, "the new key's last usage", func() bool {
				var err error
				fresh, err = api.GetKeyLastUsage(ctx, k.ID)
				return err == nil
			})
			if fresh == nil {
				return nil
			}
			errUse := user.UseKey(ctx, k.ID, "Encrypt")
			used, errUsed := api.GetKeyLastUsage(ctx, k.ARN)
			if errUsed != nil {
				return class(errUsed)
			}
			_ = api.DisableKey(ctx, k.ID)
			var errDisabled error
			eventually(t, "the disabled key refusing a use", func() bool {
				errDisabled = user.UseKey(ctx, k.ID, "Encrypt")
				return errDisabled != nil
			})
			after, _ := api.GetKeyLastUsage(ctx, k.ID)
			_, errAlias := api.GetKeyLastUsage(ctx, "alias/contract-last-usage")
			_, errMissing := api.GetKeyLastUsage(ctx, "00000000-dead-4000-8000-000000000000")
			near := func(a, b time.Time) bool { return a.Sub(b).Abs() < 5*time.Second }
			return []any{
				fresh.Operation, fresh.Time == nil, fresh.TrackingStart.Equal(fresh.KeyCreation), near(fresh.At, time.Now()),
				class(errUse), used.Operation, used.Time != nil && near(*used.Time, used.At), used.CloudTrailEventID != "",
				class(errDisabled), after.Operation, after.Time != nil && after.Time.Equal(*used.Time),
				class(errAlias), class(errMissing),
			}
		},
		Want: []any{
			"", true, true, true,
			"", "Encrypt", true, true,
			"InvalidState", "Encrypt", true,
			"NotFound", "NotFound",
		},
	}
}
