package v1alpha1_test

import (
	"testing"

	"github.com/kmsoperator/kms-operator/api/v1alpha1"
)

const someMRK = "arn:aws:kms:us-east-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab"

// TestReplicaKeyUpdate: what KMS fixes when it makes a replica (its region,
// its primary key) cannot change; the rest is managed in place.
func TestReplicaKeyUpdate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		reason string
		create func(*v1alpha1.ReplicaKeySpec)
		update func(*v1alpha1.ReplicaKeySpec)
		want   string // empty: the update is accepted
	}{
		{
			name:   "region changed",
			reason: "a replica cannot move between regions",
			update: func(s *v1alpha1.ReplicaKeySpec) { s.Region = "eu-west-2" },
			want:   "spec.region is immutable",
		},
		{
			name:   "primary Key changed",
			reason: "a replica belongs to one multi-Region key",
			update: func(s *v1alpha1.ReplicaKeySpec) { s.PrimaryKeyRef.Name = "other" },
			want:   "spec.primaryKeyRef is immutable",
		},
		{
			name:   "primary switched from a Key to an ARN",
			reason: "a replica belongs to one multi-Region key, however it is named",
			update: func(s *v1alpha1.ReplicaKeySpec) { s.PrimaryKeyRef, s.PrimaryKeyARN = nil, someMRK },
			want:   "spec.primaryKeyRef and spec.primaryKeyARN are immutable",
		},
		{
			name:   "primary ARN changed",
			reason: "a replica belongs to one multi-Region key",
			create: func(s *v1alpha1.ReplicaKeySpec) { s.PrimaryKeyRef, s.PrimaryKeyARN = nil, someMRK },
			update: func(s *v1alpha1.ReplicaKeySpec) {
				s.PrimaryKeyARN = "arn:aws:kms:us-east-1:111122223333:key/mrk-00000000000000000000000000000000"
			},
			want: "spec.primaryKeyARN is immutable",
		},
		{
			name:   "description, tags, state and deletion changed",
			reason: "each replica's own aspects are managed in place",
			update: func(s *v1alpha1.ReplicaKeySpec) {
				s.Description, s.Tags, s.Enabled = "d", map[string]string{"team": "a"}, new(bool)
				s.DeletionPolicy, s.PendingWindowInDays = v1alpha1.DeletionPolicyRetain, 7
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newReplica(tc.create)
			if err := k8s.Create(ctx(t), r); err != nil {
				t.Fatalf("create: %v", err)
			}
			tc.update(&r.Spec)
			err := k8s.Update(ctx(t), r)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("update rejected (%s): %v", tc.reason, err)
				}
				return
			}
			requireInvalid(t, err, tc.want, tc.reason)
		})
	}
}
