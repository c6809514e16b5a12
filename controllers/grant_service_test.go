package controllers

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

const (
	testService   = "logs.amazonaws.com"
	testSourceARN = "arn:aws:logs:us-east-1:111122223333:log-group:app"
)

func TestCompareGrant(t *testing.T) {
	toService := kmsclient.GrantInput{Name: "n", GranteeServicePrincipal: testService, RetiringServicePrincipal: testService,
		Operations: []string{"Encrypt", "Decrypt"}, SourceARN: testSourceARN}
	listed := kmsclient.Grant{Name: "n", GranteeServicePrincipal: testService, RetiringServicePrincipal: testService,
		Operations: []string{"Decrypt", "Encrypt"}, SourceARN: testSourceARN}
	toRole := kmsclient.GrantInput{Name: "n", GranteePrincipal: testGrantee, Operations: []string{"Decrypt"}}
	cases := map[string]struct {
		reason string
		listed func(g *kmsclient.Grant)
		want   kmsclient.GrantInput
		verdict
	}{
		"ServiceMatches": {
			reason:  "A grant to a service principal is listed as given: the same service, source ARN and operations match.",
			want:    toService,
			verdict: matches,
		},
		"DisplayPrincipalBesideService": {
			reason:  "Whatever KMS shows in GranteePrincipal beside the service principal's own field says nothing more.",
			listed:  func(g *kmsclient.Grant) { g.GranteePrincipal, g.RetiringPrincipal = "AWS Internal", "AWS Internal" },
			want:    toService,
			verdict: matches,
		},
		"OtherService": {
			reason:  "Another service differs.",
			listed:  func(g *kmsclient.Grant) { g.GranteeServicePrincipal = "s3.amazonaws.com" },
			want:    toService,
			verdict: differs,
		},
		"OtherRetiringService": {
			reason:  "Another retiring service differs.",
			listed:  func(g *kmsclient.Grant) { g.RetiringServicePrincipal = "s3.amazonaws.com" },
			want:    toService,
			verdict: differs,
		},
		"OtherSourceARN": {
			reason:  "Another source ARN differs: the grant must be replaced.",
			listed:  func(g *kmsclient.Grant) { g.SourceARN = testSourceARN + "-old" },
			want:    toService,
			verdict: differs,
		},
		"ServiceWhereARNDeclared": {
			reason: "A grant to a service where the spec names an IAM principal differs, even if the display principal looks right.",
			listed: func(g *kmsclient.Grant) {
				*g = kmsclient.Grant{Name: "n", GranteePrincipal: testGrantee, GranteeServicePrincipal: testService, Operations: []string{"Decrypt"}}
			},
			want:    toRole,
			verdict: differs,
		},
		"RoleByUniqueID": {
			reason: "An IAM principal shown as its unique id is not known yet, as before.",
			listed: func(g *kmsclient.Grant) {
				*g = kmsclient.Grant{Name: "n", GranteePrincipal: "AROAEXAMPLE", Operations: []string{"Decrypt"}}
			},
			want:    toRole,
			verdict: unknownYet,
		},
		"ServiceGrantWithRetiringRole": {
			reason: "A grant to a service may be retired by an IAM principal, compared as one.",
			listed: func(g *kmsclient.Grant) { g.RetiringServicePrincipal, g.RetiringPrincipal = "", "AROAEXAMPLE" },
			want: func() kmsclient.GrantInput {
				in := toService
				in.RetiringServicePrincipal, in.RetiringPrincipal = "", testGrantee
				return in
			}(),
			verdict: unknownYet,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			gr := listed
			gr.Operations = slices.Clone(listed.Operations)
			if tc.listed != nil {
				tc.listed(&gr)
			}
			if got := compareGrant(gr, tc.want); got != tc.verdict {
				t.Errorf("%s\ngot verdict %d, want %d", tc.reason, got, tc.verdict)
			}
		})
	}
}

// serviceGrant lets testService Encrypt and Decrypt with the Key named ref on
// behalf of testSourceARN, retired by the service too.
func serviceGrant(ref string) *kmsv1alpha1.Grant {
	g := newGrant(ref)
	g.Spec.GranteePrincipal = ""
	g.Spec.GranteeServicePrincipal, g.Spec.RetiringServicePrincipal = testService, testService
	g.Spec.Constraints = &kmsv1alpha1.GrantConstraints{SourceArn: testSourceARN}
	return g
}

// TestServiceGrantLifecycle: a grant to a service principal is created with
// exactly the declared parameters, replaced make-before-break when its
// source ARN changes, and revoked on delete, like any other grant.
func TestServiceGrantLifecycle(t *testing.T) {
	ctx := context.Background()
	w := newRefWorld(t)
	g := serviceGrant("k1")
	c := newRefClient(t, w.keyObject("k1"), g)
	inKMS := func() []kmsclient.Grant {
		grants := w.kms.Grants(w.ids["k1"])
		for i := range grants {
			grants[i].GrantID = ""
		}
		return grants
	}
	want := kmsclient.Grant{KeyID: w.keyObject("k1").Status.ARN, Name: "kms-operator-" + string(g.UID),
		GranteeServicePrincipal: testService, RetiringServicePrincipal: testService,
		Operations: []string{"Decrypt", "Encrypt"}, SourceARN: testSourceARN}

	got := reconcileGrant(t, w, c, g)
	if diff := cmp.Diff(grantOutcome{Ready: available, Synced: synced, Recorded: "k1:new",
		InKMS: map[string][]string{"k1": {"new Decrypt,Encrypt"}},
		Calls: []string{"ListGrants", "CreateGrant"}, Events: []string{"Normal Created"}}, got); diff != "" {
		t.Fatalf("create (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]kmsclient.Grant{want}, inKMS(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("the grant in KMS (-want +got):\n%s", diff)
	}

	again := reconcileGrant(t, w, c, g)
	if diff := cmp.Diff([]string{"ListGrants"}, again.Calls); diff != "" {
		t.Errorf("a matching grant to a service is not written again (-want +got):\n%s", diff)
	}

	update := mustGetGrant(t, c, g)
	update.Spec.Constraints.SourceArn = testSourceARN + "-2"
	update.Generation++
	if err := c.Update(ctx, update); err != nil {
		t.Fatal(err)
	}
	replaced := reconcileGrant(t, w, c, update)
	if create, revoke := slices.Index(replaced.Calls, "CreateGrant"), slices.Index(replaced.Calls, "RevokeGrant"); create < 0 || revoke < create {
		t.Errorf("a new source ARN replaces the grant make-before-break: calls %v", replaced.Calls)
	}
	want.SourceARN = testSourceARN + "-2"
	if diff := cmp.Diff([]kmsclient.Grant{want}, inKMS(), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("after the change (-want +got):\n%s", diff)
	}

	if err := c.Delete(ctx, mustGetGrant(t, c, update)); err != nil {
		t.Fatal(err)
	}
	if gone := reconcileGrant(t, w, c, update); !gone.Gone || len(inKMS()) != 0 {
		t.Errorf("delete: %+v, grants left %v", gone, inKMS())
	}
}

func mustGetGrant(t *testing.T, c client.Client, g *kmsv1alpha1.Grant) *kmsv1alpha1.Grant {
	t.Helper()
	var got kmsv1alpha1.Grant
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(g), &got); err != nil {
		t.Fatal(err)
	}
	return &got
}
