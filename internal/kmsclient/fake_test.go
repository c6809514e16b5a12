package kmsclient_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	arn1 = "arn:aws:kms:us-east-1:111122223333:key/00000001-0000-4000-8000-000000000001"
	id1  = "00000001-0000-4000-8000-000000000001"
	id2  = "00000002-0000-4000-8000-000000000002"
)

// class names an error's class for comparison; "" is success.
func class(err error) string {
	if err == nil {
		return ""
	}
	return kmsclient.ClassOf(err).String()
}

func mustCreate(t *testing.T, f *kmsclient.Fake, in kmsclient.CreateKeyInput) *kmsclient.Key {
	t.Helper()
	k, err := f.CreateKey(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k
}

func TestFake(t *testing.T) {
	ctx := context.Background()
	transient := kmsclient.NewError("CreateKey", kmsclient.Transient, "", "i/o timeout")
	cases := map[string]struct {
		reason string
		run    func(t *testing.T, f *kmsclient.Fake) any
		want   any
	}{
		"CreateThenDescribe": {
			reason: "A created key is described the same by id, ARN and alias, with KMS defaults filled in.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				created := mustCreate(t, f, kmsclient.CreateKeyInput{Description: "d"})
				if err := f.CreateAlias(ctx, "alias/a", created.ID); err != nil {
					t.Fatal(err)
				}
				var got []*kmsclient.Key
				for _, id := range []string{created.ID, created.ARN, "alias/a", "arn:aws:kms:us-east-1:111122223333:alias/a"} {
					k, err := f.DescribeKey(ctx, id)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, k)
				}
				return got
			},
			want: func() []*kmsclient.Key {
				k := &kmsclient.Key{ID: id1, ARN: arn1, Description: "d", KeySpec: "SYMMETRIC_DEFAULT",
					KeyUsage: "ENCRYPT_DECRYPT", Origin: "AWS_KMS", State: "Enabled", CreationDate: t0}
				return []*kmsclient.Key{k, k, k, k}
			}(),
		},
		"MissingKey": {
			reason: "Every call on an unknown key or alias is NotFound.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				_, err1 := f.DescribeKey(ctx, "nope")
				err2 := f.EnableKey(ctx, "alias/nope")
				_, err3 := f.ListGrants(ctx, arn1)
				return []string{class(err1), class(err2), class(err3)}
			},
			want: []string{"NotFound", "NotFound", "NotFound"},
		},
		"MultiRegionAndImportedKeys": {
			reason: "Multi-Region key ids start with mrk-; EXTERNAL keys wait for key material and cannot be enabled.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				mrk := mustCreate(t, f, kmsclient.CreateKeyInput{MultiRegion: true})
				ext := mustCreate(t, f, kmsclient.CreateKeyInput{Origin: "EXTERNAL"})
				return []string{mrk.ID, ext.State, class(f.EnableKey(ctx, ext.ID))}
			},
			want: []string{"mrk-00000000000000000000000000000001", "PendingImport", "InvalidState"},
		},
		"Policy": {
			reason: "A key without policy gets KMS's default; PutKeyPolicy stores the document; invalid JSON is MalformedPolicy.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				k := mustCreate(t, f, kmsclient.CreateKeyInput{})
				def, _ := f.GetKeyPolicy(ctx, k.ID)
				errPut := f.PutKeyPolicy(ctx, k.ID, `{"Statement":[]}`, false)
				put, _ := f.GetKeyPolicy(ctx, k.ID)
				errBad := f.PutKeyPolicy(ctx, k.ID, `{`, false)
				_, errCreate := f.CreateKey(ctx, kmsclient.CreateKeyInput{Policy: "nope"})
				return []string{def[:30], class(errPut), put, class(errBad), class(errCreate)}
			},
			want: []string{`{"Version":"2012-10-17","Id":"`, "", `{"Statement":[]}`, "MalformedPolicy", "MalformedPolicy"},
		},
		"Tags": {
			reason: "Tags merge and untag removes; the aws: prefix is reserved.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				k := mustCreate(t, f, kmsclient.CreateKeyInput{Tags: map[string]string{"a": "1", "b": "2"}})
				_ = f.TagKey(ctx, k.ID, map[string]string{"c": "3", "a": "9"})
				_ = f.UntagKey(ctx, k.ID, []string{"b"})
				tags, _ := f.ListTags(ctx, k.ID)
				return []any{tags, class(f.TagKey(ctx, k.ID, map[string]string{"aws:x": "y"}))}
			},
			want: []any{map[string]string{"a": "9", "c": "3"}, "Invalid"},
		},
		"Aliases": {
			reason: "Aliases are created once, re-targeted by UpdateAlias, resolved with one DescribeKey and deleted once.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				k1 := mustCreate(t, f, kmsclient.CreateKeyInput{})
				k2 := mustCreate(t, f, kmsclient.CreateKeyInput{})
				f.ResetCalls()
				var got []any
				add := func(a *kmsclient.Alias, err error) { got = append(got, a, class(err)) }
				got = append(got, class(f.CreateAlias(ctx, "alias/a", k1.ID)))
				add(f.GetAlias(ctx, "alias/a"))
				got = append(got, class(f.CreateAlias(ctx, "alias/a", k2.ID)))
				got = append(got, class(f.UpdateAlias(ctx, "alias/a", k2.ARN)))
				add(f.GetAlias(ctx, "alias/a"))
				got = append(got, class(f.DeleteAlias(ctx, "alias/a")))
				add(f.GetAlias(ctx, "alias/a"))
				got = append(got, class(f.DeleteAlias(ctx, "alias/a")), class(f.UpdateAlias(ctx, "alias/a", k1.ID)))
				got = append(got, f.Calls())
				return got
			},
			want: []any{
				"",
				&kmsclient.Alias{Name: "alias/a", ARN: "arn:aws:kms:us-east-1:111122223333:alias/a", TargetKeyID: id1}, "",
				"AlreadyExists",
				"",
				&kmsclient.Alias{Name: "alias/a", ARN: "arn:aws:kms:us-east-1:111122223333:alias/a", TargetKeyID: id2}, "",
				"",
				(*kmsclient.Alias)(nil), "NotFound",
				"NotFound", "NotFound",
				[]string{"CreateAlias", "DescribeKey", "CreateAlias", "UpdateAlias", "DescribeKey", "DeleteAlias", "DescribeKey", "DeleteAlias", "UpdateAlias"},
			},
		},
		"AliasNames": {
			reason: "Reserved or malformed alias names are Invalid; GetAlias of a non-alias makes no call.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				k := mustCreate(t, f, kmsclient.CreateKeyInput{})
				f.ResetCalls()
				_, errGet := f.GetAlias(ctx, k.ID)
				return []any{
					class(f.CreateAlias(ctx, "alias/aws/x", k.ID)),
					class(f.CreateAlias(ctx, "nope", k.ID)),
					class(f.CreateAlias(ctx, "alias/sp ace", k.ID)),
					class(errGet),
					f.Count("DescribeKey"),
				}
			},
			want: []any{"Invalid", "Invalid", "Invalid", "Invalid", 0},
		},
		"GrantIdempotency": {
			reason: "A named grant with the same parameters returns the same id; other parameters make a new grant; revoked grants are NotFound.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				k := mustCreate(t, f, kmsclient.CreateKeyInput{})
				in := kmsclient.GrantInput{KeyID: k.ID, Name: "g", GranteePrincipal: "arn:aws:iam::111122223333:role/r", Operations: []string{"Encrypt", "Decrypt"}}
				a, _ := f.CreateGrant(ctx, in)
				b, _ := f.CreateGrant(ctx, in)
				in.Operations = []string{"Decrypt"}
				c, _ := f.CreateGrant(ctx, in)
				before, _ := f.ListGrants(ctx, k.ID)
				errRevoke := f.RevokeGrant(ctx, k.ID, a)
				after, _ := f.ListGrants(ctx, k.ID)
				return []any{a == b, a == c, len(before), class(errRevoke), after, class(f.RetireGrant(ctx, k.ID, a))}
			},
			want: []any{true, false, 2, "", []kmsclient.Grant{{
				GrantID: "0000000000000000000000000000000000000000000000000000000000000003", KeyID: arn1, Name: "g",
				GranteePrincipal: "arn:aws:iam::111122223333:role/r", Operations: []string{"Decrypt"},
			}}, "NotFound"},
		},
		"Deletion": {
			reason: "A key pending deletion refuses mutations with InvalidState but can be read; cancelling leaves it Disabled.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				k := mustCreate(t, f, kmsclient.CreateKeyInput{})
				date, err := f.ScheduleDeletion(ctx, k.ID, 7)
				pending, _ := f.DescribeKey(ctx, k.ID)
				_, errPolicy := f.GetKeyPolicy(ctx, k.ID)
				_, errAgain := f.ScheduleDeletion(ctx, k.ID, 7)
				_, errGrant := f.CreateGrant(ctx, kmsclient.GrantInput{KeyID: k.ID, GranteePrincipal: "p", Operations: []string{"Decrypt"}})
				got := []any{date, class(err), pending.State, *pending.DeletionDate, class(errPolicy), class(errAgain), class(errGrant),
					class(f.EnableKey(ctx, k.ID)), class(f.TagKey(ctx, k.ID, map[string]string{"a": "b"})),
					class(f.CreateAlias(ctx, "alias/a", k.ID)), class(f.CancelDeletion(ctx, k.ID))}
				cancelled, _ := f.DescribeKey(ctx, k.ID)
				return append(got, cancelled.State, cancelled.DeletionDate, class(f.CancelDeletion(ctx, k.ID)))
			},
			want: []any{t0.AddDate(0, 0, 7), "", "PendingDeletion", t0.AddDate(0, 0, 7), "", "InvalidState", "InvalidState",
				"InvalidState", "InvalidState", "InvalidState", "", "Disabled", (*time.Time)(nil), "InvalidState"},
		},
		"DeletionWindow": {
			reason: "The window defaults to 30 days and must be 7-30.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				k := mustCreate(t, f, kmsclient.CreateKeyInput{})
				_, errShort := f.ScheduleDeletion(ctx, k.ID, 6)
				date, _ := f.ScheduleDeletion(ctx, k.ID, 0)
				return []any{class(errShort), date}
			},
			want: []any{"Invalid", t0.AddDate(0, 0, 30)},
		},
		"Rotation": {
			reason: "Rotation defaults to 365 days from enabling, rejects bad periods, needs an Enabled symmetric key.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				k := mustCreate(t, f, kmsclient.CreateKeyInput{})
				off, _ := f.GetRotation(ctx, k.ID)
				_ = f.EnableRotation(ctx, k.ID, 0)
				on, _ := f.GetRotation(ctx, k.ID)
				errPeriod := f.EnableRotation(ctx, k.ID, 30)
				_ = f.DisableKey(ctx, k.ID)
				errDisabled := f.RotateOnDemand(ctx, k.ID)
				rsa := mustCreate(t, f, kmsclient.CreateKeyInput{KeySpec: "RSA_2048", KeyUsage: "SIGN_VERIFY"})
				_, errRSA := f.GetRotation(ctx, rsa.ID)
				return []any{off, on, class(errPeriod), class(errDisabled), class(errRSA)}
			},
			want: []any{
				&kmsclient.Rotation{},
				&kmsclient.Rotation{Enabled: true, PeriodInDays: 365, NextRotationDate: func() *time.Time { d := t0.AddDate(0, 0, 365); return &d }()},
				"Invalid", "InvalidState", "Invalid",
			},
		},
		"InjectedFailure": {
			reason: "Fail returns the error without effect, for the given number of calls only.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				k := mustCreate(t, f, kmsclient.CreateKeyInput{})
				f.Fail("PutKeyPolicy", kmsclient.NewError("PutKeyPolicy", kmsclient.MalformedPolicy, "MalformedPolicyDocumentException", "no such principal"), 1)
				err1 := f.PutKeyPolicy(ctx, k.ID, `{"a":1}`, false)
				p1, _ := f.GetKeyPolicy(ctx, k.ID)
				err2 := f.PutKeyPolicy(ctx, k.ID, `{"a":2}`, false)
				p2, _ := f.GetKeyPolicy(ctx, k.ID)
				return []any{class(err1), p1 != `{"a":1}`, class(err2), p2, f.Count("PutKeyPolicy")}
			},
			want: []any{"MalformedPolicy", true, "", `{"a":2}`, 2},
		},
		"LostResponse": {
			reason: "LoseResponse creates the key yet returns the error: the tag lets FindKeysByTag recover it instead of creating a duplicate.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				f.LoseResponse("CreateKey", transient, 1)
				key, err := f.CreateKey(ctx, kmsclient.CreateKeyInput{Tags: map[string]string{"owner": "uid-1"}})
				mustCreate(t, f, kmsclient.CreateKeyInput{Tags: map[string]string{"owner": "uid-2"}})
				found, errFind := f.FindKeysByTag(ctx, "owner", "uid-1")
				return []any{key, class(err), len(f.Keys()), found, class(errFind), f.Calls()}
			},
			want: []any{(*kmsclient.Key)(nil), "Transient", 2, []string{id1}, "",
				[]string{"CreateKey", "CreateKey", "ListKeys", "ListResourceTags", "ListResourceTags"}},
		},
		"FindKeysByTagSkipsUnreadableKeys": {
			reason: "Keys whose tags are NotFound or AccessDenied are skipped; other errors fail the search.",
			run: func(t *testing.T, f *kmsclient.Fake) any {
				mustCreate(t, f, kmsclient.CreateKeyInput{Tags: map[string]string{"owner": "u"}})
				mustCreate(t, f, kmsclient.CreateKeyInput{Tags: map[string]string{"owner": "u"}})
				f.Fail("ListResourceTags", kmsclient.NewError("ListResourceTags", kmsclient.Invalid, "AccessDeniedException", "denied"), 1)
				skipped, err1 := f.FindKeysByTag(ctx, "owner", "u")
				f.Fail("ListResourceTags", kmsclient.NewError("ListResourceTags", kmsclient.Throttled, "ThrottlingException", "slow down"), 1)
				_, err2 := f.FindKeysByTag(ctx, "owner", "u")
				return []any{skipped, class(err1), class(err2)}
			},
			want: []any{[]string{id2}, "", "Throttled"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := kmsclient.NewFake()
			f.Now = func() time.Time { return t0 }
			if diff := cmp.Diff(tc.want, tc.run(t, f)); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func TestFakeFailUnknownOperation(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Fail with an API method name instead of a KMS operation should panic")
		}
	}()
	kmsclient.NewFake().Fail("ListTags", nil, 1)
}

func TestFakeProvider(t *testing.T) {
	p := kmsclient.NewFakeProvider()
	def, _ := p.For("")
	use1, _ := p.For("us-east-1")
	euw1, _ := p.For("eu-west-1")
	k, err := euw1.CreateKey(context.Background(), kmsclient.CreateKeyInput{})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{def == use1, def == euw1, k.ARN, p.Fake("eu-west-1").Count("CreateKey")}
	want := []any{true, false, "arn:aws:kms:eu-west-1:111122223333:key/" + id1, 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("one fake per region, \"\" being us-east-1\n-want +got:\n%s", diff)
	}
}
