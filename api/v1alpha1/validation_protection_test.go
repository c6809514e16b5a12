package v1alpha1_test

// Admission of grants to AWS service principals and of a Key's deletion
// protection (see validation_test.go for how these tests run).

import (
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kmsoperator/kms-operator/api/v1alpha1"
)

const (
	logsService = "logs.amazonaws.com"
	logGroupARN = "arn:aws:logs:us-east-1:111122223333:log-group:app"
)

// toService makes the grant one to the CloudWatch Logs service on behalf of a
// log group, retired by the service.
func toService(s *v1alpha1.GrantSpec) {
	s.GranteePrincipal = ""
	s.GranteeServicePrincipal, s.RetiringServicePrincipal = logsService, logsService
	s.Constraints = &v1alpha1.GrantConstraints{SourceArn: logGroupARN}
}

func TestServiceGrantAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		mutate       func(*v1alpha1.GrantSpec)
	}{
		{"grant to a service", "a service principal with its source ARN and a retiring service principal", toService},
		{"retired by an IAM principal", "KMS takes a retiring principal of either kind", func(s *v1alpha1.GrantSpec) {
			toService(s)
			s.RetiringServicePrincipal, s.RetiringPrincipal = "", "arn:aws:iam::111122223333:role/ops"
		}},
		{"with an encryption context too", "SourceArn combines with one encryption-context constraint", func(s *v1alpha1.GrantSpec) {
			toService(s)
			s.Constraints.EncryptionContextSubset = map[string]string{"app": "payments"}
		}},
		{"regional service principal", "service principals may carry a region, as KMS's pattern allows", func(s *v1alpha1.GrantSpec) {
			toService(s)
			s.GranteeServicePrincipal = "logs.us-east-1.amazonaws.com"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newGrant(tc.mutate)
			if err := k8s.Create(ctx(t), g); err != nil {
				t.Fatalf("rejected (%s): %v", tc.reason, err)
			}
		})
	}
}

func TestServiceGrantRejected(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		mutate       func(*v1alpha1.GrantSpec)
		want         string
	}{
		{
			name:   "both grantees",
			reason: "KMS takes exactly one of GranteePrincipal and GranteeServicePrincipal",
			mutate: func(s *v1alpha1.GrantSpec) { toService(s); s.GranteePrincipal = "arn:aws:iam::111122223333:role/app" },
			want:   "exactly one of spec.granteePrincipal (an IAM ARN) or spec.granteeServicePrincipal (an AWS service such as logs.amazonaws.com) must be set",
		},
		{
			name:   "service without a source ARN",
			reason: "KMS requires a SourceArn constraint with a grantee service principal",
			mutate: func(s *v1alpha1.GrantSpec) { toService(s); s.Constraints = nil },
			want:   "spec.granteeServicePrincipal needs spec.constraints.sourceArn: KMS lets an AWS service use the key only on behalf of the resource it names",
		},
		{
			name:   "service without a retiring principal",
			reason: "KMS requires a retiring principal or retiring service principal with a grantee service principal",
			mutate: func(s *v1alpha1.GrantSpec) { toService(s); s.RetiringServicePrincipal = "" },
			want:   "spec.granteeServicePrincipal needs spec.retiringPrincipal or spec.retiringServicePrincipal: KMS requires one for a grant to an AWS service",
		},
		{
			name:   "source ARN on a grant to a principal",
			reason: "KMS evaluates SourceArn only for requests a service makes: on a grant to a role it would restrict nothing",
			mutate: func(s *v1alpha1.GrantSpec) { s.Constraints = &v1alpha1.GrantConstraints{SourceArn: logGroupARN} },
			want:   "spec.constraints.sourceArn is only for a grant to an AWS service (spec.granteeServicePrincipal): KMS evaluates it only for requests a service makes",
		},
		{
			name:   "two retiring principals",
			reason: "KMS takes at most one of RetiringPrincipal and RetiringServicePrincipal",
			mutate: func(s *v1alpha1.GrantSpec) { toService(s); s.RetiringPrincipal = "arn:aws:iam::111122223333:role/ops" },
			want:   "set spec.retiringPrincipal or spec.retiringServicePrincipal, not both",
		},
		{
			name:   "service principal that is no service principal",
			reason: "KMS's pattern: dotted names such as logs.amazonaws.com",
			mutate: func(s *v1alpha1.GrantSpec) {
				toService(s)
				s.GranteeServicePrincipal = "arn:aws:iam::111122223333:role/app"
			},
			want: "spec.granteeServicePrincipal in body should match",
		},
		{
			name:   "retiring service principal that is no service principal",
			reason: "the same pattern",
			mutate: func(s *v1alpha1.GrantSpec) { toService(s); s.RetiringServicePrincipal = "logs" },
			want:   "spec.retiringServicePrincipal in body should match",
		},
		{
			name:   "source ARN that is no ARN",
			reason: "SourceArn names a resource by its ARN",
			mutate: func(s *v1alpha1.GrantSpec) { toService(s); s.Constraints.SourceArn = "log-group:app" },
			want:   "spec.constraints.sourceArn must be an ARN: arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireInvalid(t, k8s.Create(ctx(t), newGrant(tc.mutate)), tc.want, tc.reason)
		})
	}
}

func TestDeletionProtection(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		protection   *v1alpha1.KeyDeletionProtection
		// want: the rejection's message; "" accepted.
		want string
		// references: what the stored object says, when accepted.
		references v1alpha1.ReferencesPolicy
	}{
		{"unused for 30 days", "the usual guard; references default to Wait",
			&v1alpha1.KeyDeletionProtection{UnusedForDays: 30}, "", v1alpha1.ReferencesWait},
		{"references ignored", "the opt-out of the wait for Aliases and Grants, without a usage guard",
			&v1alpha1.KeyDeletionProtection{References: v1alpha1.ReferencesIgnore}, "", v1alpha1.ReferencesIgnore},
		{"negative days", "a guard of no days guards nothing: omit the field instead",
			&v1alpha1.KeyDeletionProtection{UnusedForDays: -1}, "spec.deletionProtection.unusedForDays: Invalid value: -1", ""},
		{"ten years and a day", "longer than any tracking KMS can have",
			&v1alpha1.KeyDeletionProtection{UnusedForDays: 3651}, "spec.deletionProtection.unusedForDays: Invalid value: 3651", ""},
		{"other references policy", "Wait or Ignore",
			&v1alpha1.KeyDeletionProtection{References: "Delete"}, `spec.deletionProtection.references: Unsupported value: "Delete"`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := newKey(func(s *v1alpha1.KeySpec) { s.DeletionProtection = tc.protection })
			err := k8s.Create(ctx(t), key)
			if tc.want != "" {
				requireInvalid(t, err, tc.want, tc.reason)
				return
			}
			if err != nil {
				t.Fatalf("rejected (%s): %v", tc.reason, err)
			}
			stored := &v1alpha1.Key{}
			if err := k8s.Get(ctx(t), client.ObjectKeyFromObject(key), stored); err != nil {
				t.Fatal(err)
			}
			if got := stored.Spec.DeletionProtection.References; got != tc.references {
				t.Errorf("references = %q, want %q", got, tc.references)
			}
			if stored.Spec.WaitsForReferences() != (tc.references == v1alpha1.ReferencesWait) {
				t.Errorf("WaitsForReferences() = %v for a stored %q", stored.Spec.WaitsForReferences(), tc.references)
			}
		})
	}
}

// TestLastUsedColumn: `kubectl get keys -o wide` shows when the key was last
// used, as an age.
func TestLastUsedColumn(t *testing.T) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := k8s.Get(ctx(t), client.ObjectKey{Name: "keys.kms.kmsoperator.io"}, crd); err != nil {
		t.Fatal(err)
	}
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		if c.Name == "Last Used" {
			if c.JSONPath != ".status.lastUsage.time" || c.Type != "date" || c.Priority != 1 {
				t.Errorf("Last Used column = %+v, want .status.lastUsage.time as a date at priority 1 (-o wide)", c)
			}
			return
		}
	}
	t.Error("no Last Used printer column")
}
