package v1alpha1_test

// Admission of AWSAccounts and of accountRef (see validation_test.go for how
// these tests run).

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// newAccount returns a valid AWSAccount with mut applied.
func newAccount(mut func(*v1alpha1.AWSAccountSpec)) *v1alpha1.AWSAccount {
	a := &v1alpha1.AWSAccount{
		ObjectMeta: metav1.ObjectMeta{Name: uniqueName("acct")},
		Spec: v1alpha1.AWSAccountSpec{
			RoleARN:           "arn:aws:iam::222233334444:role/kms-operator",
			AllowedNamespaces: v1alpha1.AllowedNamespaces{Names: []string{"team-a"}},
		},
	}
	if mut != nil {
		mut(&a.Spec)
	}
	return a
}

func TestAccountAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		mutate       func(*v1alpha1.AWSAccountSpec)
		check        func(t *testing.T, a *v1alpha1.AWSAccount)
	}{
		{"minimal", "a role and a namespace; session name and duration defaulted", nil, func(t *testing.T, a *v1alpha1.AWSAccount) {
			if a.Spec.SessionName != "kms-operator" || a.Spec.SessionDuration == nil || a.Spec.SessionDuration.Duration != time.Hour {
				t.Errorf("defaults: sessionName %q, sessionDuration %s; want kms-operator, 1h", a.Spec.SessionName, a.Spec.SessionDuration)
			}
		}},
		{"everything", "external id, session, region, endpoints, quotas and a selector", func(s *v1alpha1.AWSAccountSpec) {
			s.ExternalID, s.SessionName = "tenant-42", "platform"
			s.SessionDuration = &metav1.Duration{Duration: 12 * time.Hour}
			s.Region = "eu-west-1"
			s.Endpoints = &v1alpha1.AccountEndpoints{KMS: "https://kms.eu-west-1.amazonaws.com", STS: "https://sts.eu-west-1.amazonaws.com"}
			s.Quotas = map[string]int32{"CreateKey": 20}
			s.AllowedNamespaces = v1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "payments"}}}
		}, nil},
		{"GovCloud role", "other partitions", func(s *v1alpha1.AWSAccountSpec) {
			s.RoleARN = "arn:aws-us-gov:iam::222233334444:role/path/kms-operator"
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAccount(tc.mutate)
			if err := k8s.Create(ctx(t), a); err != nil {
				t.Fatalf("rejected (%s): %v", tc.reason, err)
			}
			if tc.check != nil {
				tc.check(t, a)
			}
		})
	}
}

func TestAccountRejected(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		mutate       func(*v1alpha1.AWSAccountSpec)
		want         string
	}{
		{"not a role", "a user ARN cannot be assumed", func(s *v1alpha1.AWSAccountSpec) {
			s.RoleARN = "arn:aws:iam::222233334444:user/alice"
		}, "spec.roleARN"},
		{"no namespaces", "an account nobody may use is a mistake", func(s *v1alpha1.AWSAccountSpec) {
			s.AllowedNamespaces = v1alpha1.AllowedNamespaces{}
		}, "allowedNamespaces needs names or a selector"},
		{"session too short", "STS refuses less than 15 minutes", func(s *v1alpha1.AWSAccountSpec) {
			s.SessionDuration = &metav1.Duration{Duration: 5 * time.Minute}
		}, "sessionDuration must be between 15m and 12h"},
		{"session too long", "STS refuses more than 12 hours", func(s *v1alpha1.AWSAccountSpec) {
			s.SessionDuration = &metav1.Duration{Duration: 13 * time.Hour}
		}, "sessionDuration must be between 15m and 12h"},
		{"bad session name", "STS's RoleSessionName pattern", func(s *v1alpha1.AWSAccountSpec) {
			s.SessionName = "has space"
		}, "spec.sessionName"},
		{"zero quota", "a quota of 0 would stop every call", func(s *v1alpha1.AWSAccountSpec) {
			s.Quotas = map[string]int32{"CreateKey": 0}
		}, "quotas must be at least 1 request per second"},
		{"bad endpoint", "endpoints are URLs", func(s *v1alpha1.AWSAccountSpec) {
			s.Endpoints = &v1alpha1.AccountEndpoints{KMS: "kms.internal"}
		}, "spec.endpoints.kms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireInvalid(t, k8s.Create(ctx(t), newAccount(tc.mutate)), tc.want, tc.reason)
		})
	}
}
