// Package kmscontract is the behaviour both models of KMS must show through
// kmsclient.API: the in-memory fake of the unit tests (kmsfake) and the KMS
// server of the e2e tests and demo (hack/kmsserver, reached through the real
// SDK client). A behaviour one model gains and the other lacks fails here, so
// the unit tests and the e2e tests keep telling the same story about KMS.
//
// The cases speak only through the interface and compare what the interface
// shows (classes of errors, states, relations between ids), never one
// model's ids or clock. Reads that real KMS serves eventually (lists) are
// polled, so the suite also holds against a server with its consistency lags
// on.
package kmscontract

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/policy"
)

// Case is one behaviour: run returns what it saw, compared with want.
type Case struct {
	Reason string
	Run    func(t *testing.T, api kmsclient.API) any
	Want   any
}

// Run runs every case against a fresh model from newAPI.
func Run(t *testing.T, newAPI func(t *testing.T) kmsclient.API) {
	for name, tc := range Cases() {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.Want, tc.Run(t, newAPI(t))); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.Reason, diff)
			}
		})
	}
}

var ctx = context.Background()

// class names an error's class for comparison; "" is success.
func class(err error) string {
	if err == nil {
		return ""
	}
	return kmsclient.ClassOf(err).String()
}

func create(t *testing.T, api kmsclient.API, in kmsclient.CreateKeyInput) *kmsclient.Key {
	t.Helper()
	k, err := api.CreateKey(ctx, in)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k
}

// eventually polls check for up to a minute: lists in real KMS (and in the
// KMS server with its lags on) show a change only after a while.
func eventually(t *testing.T, what string, check func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !check() {
		if time.Now().After(deadline) {
			t.Errorf("%s: not seen within a minute", what)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// uniqueAlias is an alias name no other case (or earlier run against the same
// server) uses.
func uniqueAlias(prefix string) string {
	return "alias/" + prefix + "-" + strings.ReplaceAll(time.Now().Format("150405.000000000"), ".", "")
}

const role = "arn:aws:iam::111122223333:role/contract"

// Cases are the contract's behaviours.
func Cases() map[string]Case {
	return map[string]Case{
		"CreateThenDescribe":   createThenDescribe(),
		"MissingKey":           missingKey(),
		"MultiRegionAndImport": multiRegionAndImport(),
		"Policy":               policyCase(),
		"Tags":                 tagsCase(),
		"Aliases":              aliasesCase(),
		"AliasNames":           aliasNames(),
		"GrantIdempotency":     grantIdempotency(),
		"Deletion":             deletion(),
		"DeletionWindow":       deletionWindow(),
		"Rotation":             rotation(),
		"FindKeys":             findKeys(),
		"ServiceGrant":         serviceGrant(),
		"LastUsage":            lastUsage(),
		"ImportSymmetric":      importSymmetric(),
		"ImportAsymmetric":     importAsymmetric(),
	}
}

func createThenDescribe() Case {
	return Case{
		Reason: "A created key is described the same by id, ARN and alias, with KMS's defaults filled in.",
		Run: func(t *testing.T, api kmsclient.API) any {
			created := create(t, api, kmsclient.CreateKeyInput{Description: "d"})
			alias := uniqueAlias("describe")
			if err := api.CreateAlias(ctx, alias, created.ID); err != nil {
				t.Fatal(err)
			}
			var got []any
			for _, id := range []string{created.ID, created.ARN, alias} {
				k, err := api.DescribeKey(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, []any{k.ID == created.ID, k.ARN == created.ARN, k.Description, k.KeySpec, k.KeyUsage, k.Origin, k.State, k.MultiRegion})
			}
			return got
		},
		Want: []any{
			[]any{true, true, "d", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "AWS_KMS", "Enabled", false},
			[]any{true, true, "d", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "AWS_KMS", "Enabled", false},
			[]any{true, true, "d", "SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT", "AWS_KMS", "Enabled", false},
		},
	}
}

func missingKey() Case {
	return Case{
		Reason: "Calls on an unknown key or alias are NotFound.",
		Run: func(t *testing.T, api kmsclient.API) any {
			const missing = "00000000-dead-4000-8000-000000000000"
			_, err1 := api.DescribeKey(ctx, missing)
			err2 := api.EnableKey(ctx, "alias/contract-missing")
			_, err3 := api.ListGrants(ctx, missing)
			_, err4 := api.GetAlias(ctx, "alias/contract-missing")
			return []string{class(err1), class(err2), class(err3), class(err4)}
		},
		Want: []string{"NotFound", "NotFound", "NotFound", "NotFound"},
	}
}

func multiRegionAndImport() Case {
	return Case{
		Reason: "Multi-Region key ids start with mrk-; EXTERNAL keys wait for key material and cannot be enabled.",
		Run: func(t *testing.T, api kmsclient.API) any {
			mrk := create(t, api, kmsclient.CreateKeyInput{MultiRegion: true})
			ext := create(t, api, kmsclient.CreateKeyInput{Origin: "EXTERNAL"})
			return []any{strings.HasPrefix(mrk.ID, "mrk-"), mrk.MultiRegion, ext.State, class(api.EnableKey(ctx, ext.ID))}
		},
		Want: []any{true, true, "PendingImport", "InvalidState"},
	}
}

const (
	somePolicy  = `{"Version":"2012-10-17","Statement":[{"Sid":"root","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
	otherPolicy = `{"Version":"2012-10-17","Statement":[{"Sid":"other","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`
)

func policyCase() Case {
	return Case{
		Reason: "A key created without a policy gets KMS's default (the account root may do everything); PutKeyPolicy stores the document; JSON that does not parse is MalformedPolicy, at creation too.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k := create(t, api, kmsclient.CreateKeyInput{})
			def, _ := api.GetKeyPolicy(ctx, k.ID)
			defaultGrantsRoot, _ := policy.Equal(`{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`, def)
			errPut := api.PutKeyPolicy(ctx, k.ID, otherPolicy, false)
			put, _ := api.GetKeyPolicy(ctx, k.ID)
			stored, _ := policy.Equal(otherPolicy, put)
			errBad := api.PutKeyPolicy(ctx, k.ID, `{`, false)
			_, errCreate := api.CreateKey(ctx, kmsclient.CreateKeyInput{Policy: "nope"})
			return []any{defaultGrantsRoot, class(errPut), stored, class(errBad), class(errCreate)}
		},
		Want: []any{true, "", true, "MalformedPolicy", "MalformedPolicy"},
	}
}

func tagsCase() Case {
	return Case{
		Reason: "Tags merge, untag removes; the aws: prefix is reserved; a key holds at most 50 tags.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k := create(t, api, kmsclient.CreateKeyInput{Tags: map[string]string{"a": "1", "b": "2"}})
			_ = api.TagKey(ctx, k.ID, map[string]string{"c": "3", "a": "9"})
			_ = api.UntagKey(ctx, k.ID, []string{"b"})
			var tags map[string]string
			eventually(t, "tags a=9 c=3", func() bool {
				tags, _ = api.ListTags(ctx, k.ID)
				return cmp.Equal(tags, map[string]string{"a": "9", "c": "3"})
			})
			many := map[string]string{}
			for i := range 49 {
				many["t"+string(rune('A'+i/26))+string(rune('a'+i%26))] = "v"
			}
			errFiftyOne := api.TagKey(ctx, k.ID, many) // 2 + 49 = 51
			_, errCreate := api.CreateKey(ctx, kmsclient.CreateKeyInput{Tags: map[string]string{"aws:x": "y"}})
			return []any{tags, class(api.TagKey(ctx, k.ID, map[string]string{"aws:x": "y"})), class(errFiftyOne), class(errCreate)}
		},
		Want: []any{map[string]string{"a": "9", "c": "3"}, "Invalid", "Invalid", "Invalid"},
	}
}

func aliasesCase() Case {
	return Case{
		Reason: "An alias is created once, re-targeted by UpdateAlias, resolved by GetAlias and deleted once.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k1 := create(t, api, kmsclient.CreateKeyInput{})
			k2 := create(t, api, kmsclient.CreateKeyInput{})
			name := uniqueAlias("aliases")
			target := func() any {
				a, err := api.GetAlias(ctx, name)
				switch {
				case err != nil:
					return class(err)
				case a.TargetKeyID == k1.ID:
					return "k1"
				case a.TargetKeyID == k2.ID:
					return "k2"
				}
				return "other"
			}
			got := []any{class(api.CreateAlias(ctx, name, k1.ID)), target()}
			got = append(got, class(api.CreateAlias(ctx, name, k2.ID)))
			got = append(got, class(api.UpdateAlias(ctx, name, k2.ARN)), target())
			got = append(got, class(api.DeleteAlias(ctx, name)), target())
			return append(got, class(api.DeleteAlias(ctx, name)), class(api.UpdateAlias(ctx, name, k1.ID)))
		},
		Want: []any{"", "k1", "AlreadyExists", "", "k2", "", "NotFound", "NotFound", "NotFound"},
	}
}

func aliasNames() Case {
	return Case{
		Reason: "Reserved or malformed alias names are Invalid; GetAlias of a key id is refused.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k := create(t, api, kmsclient.CreateKeyInput{})
			_, errGet := api.GetAlias(ctx, k.ID)
			return []any{
				class(api.CreateAlias(ctx, "alias/aws/x", k.ID)),
				class(api.CreateAlias(ctx, "nope", k.ID)),
				class(api.CreateAlias(ctx, "alias/sp ace", k.ID)),
				class(errGet),
			}
		},
		Want: []any{"Invalid", "Invalid", "Invalid", "Invalid"},
	}
}

func grantIdempotency() Case {
	return Case{
		Reason: "A named grant with the same parameters returns the same id; other parameters make a new grant; a revoked grant leaves the list and cannot be retired.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k := create(t, api, kmsclient.CreateKeyInput{})
			in := kmsclient.GrantInput{KeyID: k.ID, Name: "g", GranteePrincipal: role, Operations: []string{"Encrypt", "Decrypt"}}
			a, _ := api.CreateGrant(ctx, in)
			b, _ := api.CreateGrant(ctx, in)
			in.Operations = []string{"Decrypt"}
			c, _ := api.CreateGrant(ctx, in)
			listed := func(id string) bool {
				grants, _ := api.ListGrants(ctx, k.ID)
				for _, g := range grants {
					if g.GrantID == id {
						return true
					}
				}
				return false
			}
			eventually(t, "both grants listed", func() bool { return listed(a) && listed(c) })
			errRevoke := api.RevokeGrant(ctx, k.ID, a)
			eventually(t, "the revoked grant unlisted", func() bool { return !listed(a) })
			grants, _ := api.ListGrants(ctx, k.ID)
			var left []kmsclient.Grant
			for _, g := range grants {
				// Ids are the model's own; the key is named by its ARN in KMS.
				if g.KeyID != k.ARN {
					t.Errorf("ListGrants KeyID %s, want the key's ARN %s", g.KeyID, k.ARN)
				}
				g.GrantID, g.KeyID = "", ""
				left = append(left, g)
			}
			return []any{a == b, a == c, class(errRevoke), left, class(api.RetireGrant(ctx, k.ID, a))}
		},
		Want: []any{true, false, "", []kmsclient.Grant{{Name: "g", GranteePrincipal: role, Operations: []string{"Decrypt"}}}, "NotFound"},
	}
}
