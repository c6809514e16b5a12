package front

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/google/go-cmp/cmp"
)

func TestUpdatePrimaryRegion(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	opts := Options{}
	opts.Config.Consistency = Consistency{ReplicaCreation: Duration(2 * time.Second), PrimaryRegionUpdate: Duration(3 * time.Second)}
	s := startWith(t, opts, clock)
	east, west, eu := s.kmsAs("us-east-1", "local"), s.kmsAs("us-west-2", "local"), s.kmsAs("eu-west-1", "local")
	id := createKey(t, east, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId
	must(east.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id, RotationPeriodInDays: aws.Int32(200)}))(t)
	must(east.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: id, ReplicaRegion: aws.String("us-west-2")}))(t)
	must(east.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: id, ReplicaRegion: aws.String("eu-west-1")}))(t)

	t.Run("replicas are Creating for a moment", func(t *testing.T) {
		if md := describe(t, west, *id); md.KeyState != types.KeyStateCreating || md.Enabled {
			t.Errorf("new replica %s enabled %v, want Creating", md.KeyState, md.Enabled)
		}
		if _, err := west.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")}); errCode(err) != "KMSInvalidStateException" {
			t.Errorf("Encrypt with a Creating replica: %v", err)
		}
		clock.Advance(2 * time.Second)
		if md := describe(t, west, *id); md.KeyState != types.KeyStateEnabled {
			t.Errorf("replica later %s, want Enabled", md.KeyState)
		}
	})

	t.Run("a replica shares its primary's rotation", func(t *testing.T) {
		st := must(west.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: id}))(t)
		if !st.KeyRotationEnabled || *st.RotationPeriodInDays != 200 || *st.KeyId != "arn:aws:kms:us-west-2:111122223333:key/"+*id {
			t.Errorf("replica's rotation status %+v", st)
		}
		if _, err := west.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: id}); errCode(err) != "UnsupportedOperationException" {
			t.Errorf("EnableKeyRotation of a replica: %v", err)
		}
		if _, err := west.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}); errCode(err) != "UnsupportedOperationException" {
			t.Errorf("RotateKeyOnDemand of a replica: %v", err)
		}
		must(east.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: id}))(t)
		if r := must(west.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id}))(t).Rotations; len(r) != 1 {
			t.Errorf("replica's rotations %+v, want the primary's one", r)
		}
		enc := must(west.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("rotated")}))(t)
		if dec := must(east.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))(t); string(dec.Plaintext) != "rotated" {
			t.Errorf("decrypted %q", dec.Plaintext)
		}
	})

	tests := []struct {
		name     string
		client   *kms.Client
		region   string
		wantCode string
	}{
		{"called on a replica", west, "eu-west-1", "UnsupportedOperationException"},
		{"a region without a replica", east, "ap-south-1", "NotFoundException"},
		{"its own region", east, "us-east-1", "ValidationException"},
		{"to the replica in us-west-2", east, "us-west-2", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.UpdatePrimaryRegion(ctx, &kms.UpdatePrimaryRegionInput{KeyId: id, PrimaryRegion: aws.String(tt.region)})
			if errCode(err) != tt.wantCode {
				t.Errorf("err %v, want %q", err, tt.wantCode)
			}
		})
	}

	eastARN, westARN, euARN := "arn:aws:kms:us-east-1:111122223333:key/"+*id, "arn:aws:kms:us-west-2:111122223333:key/"+*id, "arn:aws:kms:eu-west-1:111122223333:key/"+*id
	states := func() []types.KeyState {
		return []types.KeyState{describe(t, east, *id).KeyState, describe(t, west, *id).KeyState, describe(t, eu, *id).KeyState}
	}
	if diff := cmp.Diff([]types.KeyState{types.KeyStateUpdating, types.KeyStateUpdating, types.KeyStateEnabled}, states()); diff != "" {
		t.Errorf("states while updating (-want +got):\n%s", diff)
	}
	if _, err := west.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id}); errCode(err) != "KMSInvalidStateException" {
		t.Errorf("DisableKey while Updating: %v", err)
	}
	must(east.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")}))(t) // cryptography goes on
	clock.Advance(3 * time.Second)
	if diff := cmp.Diff([]types.KeyState{types.KeyStateEnabled, types.KeyStateEnabled, types.KeyStateEnabled}, states()); diff != "" {
		t.Errorf("states after (-want +got):\n%s", diff)
	}
	for name, c := range map[string]*kms.Client{"east": east, "west": west, "eu": eu} {
		if diff := cmp.Diff([]string{map[string]string{"east": "REPLICA", "west": "PRIMARY", "eu": "REPLICA"}[name],
			"us-west-2 " + westARN, "us-east-1 " + eastARN, "eu-west-1 " + euARN}, multiRegion(describe(t, c, *id))); diff != "" {
			t.Errorf("%s's MultiRegionConfiguration (-want +got):\n%s", name, diff)
		}
	}
	st := must(west.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: id}))(t)
	if !st.KeyRotationEnabled || *st.RotationPeriodInDays != 200 {
		t.Errorf("the new primary's rotation %+v, want the old primary's", st)
	}
	if r := must(east.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: id}))(t).Rotations; len(r) != 1 {
		t.Errorf("the new replica's rotations %+v", r)
	}
	must(west.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: id, ReplicaRegion: aws.String("ap-south-1")}))(t)
	if _, err := east.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: id, ReplicaRegion: aws.String("ca-central-1")}); errCode(err) != "UnsupportedOperationException" {
		t.Errorf("ReplicateKey of the old primary: %v", err)
	}

	t.Run("the new primary waits for its replicas' deletion", func(t *testing.T) {
		out := must(west.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id}))(t)
		if out.KeyState != types.KeyStatePendingReplicaDeletion {
			t.Errorf("primary %s, want PendingReplicaDeletion", out.KeyState)
		}
		out = must(east.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)}))(t)
		if out.KeyState != types.KeyStatePendingDeletion {
			t.Errorf("replica %s, want PendingDeletion", out.KeyState)
		}
	})
}
