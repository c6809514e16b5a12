package kmscontract

import (
	"testing"
	"time"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

func deletion() Case {
	return Case{
		Reason: "A key pending deletion refuses changes with InvalidState but can be read; cancelling the deletion leaves it Disabled.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k := create(t, api, kmsclient.CreateKeyInput{})
			_, err := api.ScheduleDeletion(ctx, k.ID, 7)
			pending, _ := api.DescribeKey(ctx, k.ID)
			_, errPolicy := api.GetKeyPolicy(ctx, k.ID)
			_, errAgain := api.ScheduleDeletion(ctx, k.ID, 7)
			_, errGrant := api.CreateGrant(ctx, kmsclient.GrantInput{KeyID: k.ID, GranteePrincipal: role, Operations: []string{"Decrypt"}})
			got := []any{class(err), pending.State, pending.DeletionDate != nil, class(errPolicy), class(errAgain), class(errGrant),
				class(api.EnableKey(ctx, k.ID)), class(api.TagKey(ctx, k.ID, map[string]string{"a": "b"})),
				class(api.CreateAlias(ctx, uniqueAlias("pending"), k.ID)), class(api.CancelDeletion(ctx, k.ID))}
			cancelled, _ := api.DescribeKey(ctx, k.ID)
			return append(got, cancelled.State, cancelled.DeletionDate == nil, class(api.CancelDeletion(ctx, k.ID)))
		},
		Want: []any{"", "PendingDeletion", true, "", "InvalidState", "InvalidState",
			"InvalidState", "InvalidState", "InvalidState", "", "Disabled", true, "InvalidState"},
	}
}

func deletionWindow() Case {
	return Case{
		Reason: "The deletion window must be 7-30 days and defaults to 30, counted from the request.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k := create(t, api, kmsclient.CreateKeyInput{})
			_, errShort := api.ScheduleDeletion(ctx, k.ID, 6)
			_, errLong := api.ScheduleDeletion(ctx, k.ID, 31)
			d, err := api.ScheduleDeletion(ctx, k.ID, 0)
			if err != nil || d.Date == nil {
				t.Fatalf("ScheduleDeletion: %+v, %v", d, err)
			}
			days := d.Date.Sub(k.CreationDate).Hours() / 24
			return []any{class(errShort), class(errLong), d.State, days > 29.9 && days < 30.1}
		},
		Want: []any{"Invalid", "Invalid", "PendingDeletion", true},
	}
}

func rotation() Case {
	return Case{
		Reason: "Rotation defaults to 365 days, counted from enabling; periods outside 90-2560 are Invalid; a disabled key refuses an on-demand rotation; an RSA key cannot rotate.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k := create(t, api, kmsclient.CreateKeyInput{})
			off, _ := api.GetRotation(ctx, k.ID)
			errOn := api.EnableRotation(ctx, k.ID, 0)
			on, _ := api.GetRotation(ctx, k.ID)
			next := on != nil && on.NextRotationDate != nil && on.NextRotationDate.After(time.Now().AddDate(0, 0, 364))
			errPeriod := api.EnableRotation(ctx, k.ID, 30)
			_ = api.DisableKey(ctx, k.ID)
			errDisabled := api.RotateOnDemand(ctx, k.ID)
			rsa := create(t, api, kmsclient.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "SIGN_VERIFY"})
			_, errRSA := api.GetRotation(ctx, rsa.ID)
			return []any{off.Enabled, class(errOn), on.Enabled, on.PeriodInDays, next, class(errPeriod), class(errDisabled), class(errRSA)}
		},
		Want: []any{false, "", true, int32(365), true, "Invalid", "InvalidState", "Invalid"},
	}
}

func findKeys() Case {
	return Case{
		Reason: "FindKeys finds the keys carrying every tag asked for (once the tagging API shows them), and only those.",
		Run: func(t *testing.T, api kmsclient.API) any {
			owner := "contract-" + time.Now().Format("150405.000000000")
			k := create(t, api, kmsclient.CreateKeyInput{Tags: map[string]string{"owner": owner, "team": "a"}})
			create(t, api, kmsclient.CreateKeyInput{Tags: map[string]string{"owner": owner, "team": "b"}})
			create(t, api, kmsclient.CreateKeyInput{Tags: map[string]string{"owner": owner + "-not", "team": "a"}})
			var found []kmsclient.TaggedKey
			eventually(t, "the tagged key found", func() bool {
				found, _ = api.FindKeys(ctx, map[string]string{"owner": owner, "team": "a"})
				return len(found) > 0
			})
			if len(found) != 1 {
				return found
			}
			return []any{found[0].ID == k.ID, found[0].ARN == k.ARN, found[0].Tags["owner"] == owner, found[0].Tags["team"]}
		},
		Want: []any{true, true, true, "a"},
	}
}
