package kmsfake_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmsfake"
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

func mustCreate(t *testing.T, f *kmsfake.Fake, in kmsclient.CreateKeyInput) *kmsclient.Key {
	t.Helper()
	k, err := f.CreateKey(context.Background(), in)
	if err != nil {
		t.Fatalf("CreateKey: %v", err)
	}
	return k
}

// The behaviour the fake shares with the KMS server is in the contract suite
// (internal/kmsclient/kmscontract); these are the fake's own test hooks:
// injected failures, lost responses, recorded calls and one fake per region.
func TestFake(t *testing.T) {
	ctx := context.Background()
	transient := kmsclient.NewError("CreateKey", kmsclient.Transient, "", "i/o timeout")
	cases := map[string]struct {
		reason string
		run    func(t *testing.T, f *kmsfake.Fake) any
		want   any
	}{
		"InjectedFailure": {
			reason: "Fail returns the error without effect, for the given number of calls only.",
			run: func(t *testing.T, f *kmsfake.Fake) any {
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
			reason: "LoseResponse creates the key yet returns the error: its tags let FindKeys recover it instead of creating a duplicate.",
			run: func(t *testing.T, f *kmsfake.Fake) any {
				f.LoseResponse("CreateKey", transient, 1)
				key, err := f.CreateKey(ctx, kmsclient.CreateKeyInput{Tags: map[string]string{"owner": "uid-1"}})
				mustCreate(t, f, kmsclient.CreateKeyInput{Tags: map[string]string{"owner": "uid-2"}})
				found, errFind := f.FindKeys(ctx, map[string]string{"owner": "uid-1"})
				return []any{key, class(err), len(f.Keys()), len(found), found[0].ID, class(errFind), f.Calls()}
			},
			want: []any{(*kmsclient.Key)(nil), "Transient", 2, 1, id1, "", []string{"CreateKey", "CreateKey", "GetResources"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := kmsfake.NewFake()
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
	kmsfake.NewFake().Fail("ListTags", nil, 1)
}

func TestFakeProvider(t *testing.T) {
	p := kmsfake.NewFakeProvider()
	def, _ := p.For("", "")
	use1, _ := p.For("", "us-east-1")
	euw1, _ := p.For("", "eu-west-1")
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
