package front

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/google/go-cmp/cmp"
)

// multiRegion is a multi-Region key's configuration in a comparable form.
func multiRegion(md types.KeyMetadata) []string {
	if md.MultiRegionConfiguration == nil {
		return nil
	}
	c := md.MultiRegionConfiguration
	out := []string{string(c.MultiRegionKeyType), *c.PrimaryKey.Region + " " + *c.PrimaryKey.Arn}
	for _, r := range c.ReplicaKeys {
		out = append(out, *r.Region+" "+*r.Arn)
	}
	return out
}

func TestReplicateKey(t *testing.T) {
	ctx := context.Background()
	s := startWith(t, Options{}, nil)
	east, west := s.kmsAs("us-east-1", "local"), s.kmsAs("us-west-2", "local")
	primary := createKey(t, east, &kms.CreateKeyInput{MultiRegion: aws.Bool(true), Description: aws.String("primary"), Tags: tags("a", "1")})
	id := *primary.KeyId
	if !regexp.MustCompile(`^mrk-[0-9a-f]{32}$`).MatchString(id) || !*primary.MultiRegion {
		t.Fatalf("multi-Region key id %s, MultiRegion %v", id, *primary.MultiRegion)
	}
	eastARN, westARN := "arn:aws:kms:us-east-1:111122223333:key/"+id, "arn:aws:kms:us-west-2:111122223333:key/"+id
	if diff := cmp.Diff([]string{"PRIMARY", "us-east-1 " + eastARN}, multiRegion(primary)); diff != "" {
		t.Errorf("CreateKey's MultiRegionConfiguration (-want +got):\n%s", diff)
	}

	out := must(east.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-west-2"),
		Description: aws.String("replica"), Tags: tags("b", "2")}))(t)
	replica := *out.ReplicaKeyMetadata
	both := []string{"us-east-1 " + eastARN, "us-west-2 " + westARN}
	if *replica.Arn != westARN || replica.KeyState != types.KeyStateCreating || replica.Enabled || *replica.Description != "replica" ||
		!strings.Contains(*out.ReplicaPolicy, "arn:aws:iam::111122223333:root") || len(out.ReplicaTags) != 1 {
		t.Errorf("ReplicateKey = %+v, policy %s, tags %+v", replica, *out.ReplicaPolicy, out.ReplicaTags)
	}
	if diff := cmp.Diff(append([]string{"REPLICA"}, both...), multiRegion(replica)); diff != "" {
		t.Errorf("ReplicateKey's MultiRegionConfiguration (-want +got):\n%s", diff)
	}

	described := map[string]types.KeyMetadata{"east": describe(t, east, id), "west": describe(t, west, id)}
	if md := described["west"]; md.KeyState != types.KeyStateEnabled || *md.Description != "replica" || !*md.MultiRegion {
		t.Errorf("replica %+v", md)
	}
	if diff := cmp.Diff(append([]string{"PRIMARY"}, both...), multiRegion(described["east"])); diff != "" {
		t.Errorf("primary's MultiRegionConfiguration (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(append([]string{"REPLICA"}, both...), multiRegion(described["west"])); diff != "" {
		t.Errorf("replica's MultiRegionConfiguration (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"b": "2"}, tagMap(t, west, id)); diff != "" {
		t.Errorf("replica's tags, not replicated (-want +got):\n%s", diff)
	}

	t.Run("each decrypts what the other encrypted", func(t *testing.T) {
		for from, to := range map[string]*kms.Client{"east": west, "west": east} {
			enc := must(map[string]*kms.Client{"east": east, "west": west}[from].Encrypt(ctx, &kms.EncryptInput{KeyId: &id, Plaintext: []byte(from),
				EncryptionContext: map[string]string{"app": "x"}}))(t)
			dec := must(to.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: map[string]string{"app": "x"}}))(t)
			if string(dec.Plaintext) != from || *dec.KeyId == *enc.KeyId {
				t.Errorf("%s's ciphertext decrypted to %q by %s", from, dec.Plaintext, *dec.KeyId)
			}
		}
	})

	single := createKey(t, east, nil)
	tests := []struct {
		name     string
		client   *kms.Client
		in       kms.ReplicateKeyInput
		wantCode string
	}{
		{"already replicated there", east, kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-west-2")}, "AlreadyExistsException"},
		{"a replica", west, kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("eu-west-1")}, "UnsupportedOperationException"},
		{"a single-region key", east, kms.ReplicateKeyInput{KeyId: single.KeyId, ReplicaRegion: aws.String("eu-west-1")}, "UnsupportedOperationException"},
		{"its own region", east, kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("us-east-1")}, "ValidationException"},
		{"another partition", east, kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("cn-north-1")}, "ValidationException"},
		{"a key of another region", east, kms.ReplicateKeyInput{KeyId: &westARN, ReplicaRegion: aws.String("eu-west-1")}, "NotFoundException"},
		{"a third region", east, kms.ReplicateKeyInput{KeyId: &id, ReplicaRegion: aws.String("eu-west-1")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.client.ReplicateKey(ctx, &tt.in); errCode(err) != tt.wantCode {
				t.Errorf("err %v, want %q", err, tt.wantCode)
			}
		})
	}
	if n := len(describe(t, west, id).MultiRegionConfiguration.ReplicaKeys); n != 2 {
		t.Errorf("%d replicas, want 2", n)
	}
}

func TestReplicateKeyInChina(t *testing.T) {
	ctx := context.Background()
	s := startWith(t, Options{}, nil)
	c := s.kmsAs("cn-north-1", "local")
	id := createKey(t, c, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId
	out := must(c.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: id, ReplicaRegion: aws.String("cn-northwest-1")}))(t)
	if want := "arn:aws-cn:kms:cn-northwest-1:111122223333:key/" + *id; *out.ReplicaKeyMetadata.Arn != want ||
		*out.ReplicaKeyMetadata.MultiRegionConfiguration.PrimaryKey.Arn != "arn:aws-cn:kms:cn-north-1:111122223333:key/"+*id ||
		!strings.Contains(*out.ReplicaPolicy, "arn:aws-cn:iam::111122223333:root") {
		t.Errorf("replica %s (policy %s), want %s", *out.ReplicaKeyMetadata.Arn, *out.ReplicaPolicy, want)
	}
}

func TestPendingReplicaDeletion(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := startWith(t, Options{}, clock)
	east, west := s.kmsAs("us-east-1", "local"), s.kmsAs("us-west-2", "local")
	id := createKey(t, east, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId
	must(east.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: id, ReplicaRegion: aws.String("us-west-2")}))(t)
	const week = 7 * 24 * time.Hour

	scheduled := must(east.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)}))(t)
	if scheduled.KeyState != types.KeyStatePendingReplicaDeletion || scheduled.DeletionDate != nil || *scheduled.PendingWindowInDays != 7 {
		t.Errorf("ScheduleKeyDeletion of the primary = %+v, want PendingReplicaDeletion without a DeletionDate", scheduled)
	}
	waiting := func(t *testing.T) {
		t.Helper()
		md := describe(t, east, *id)
		if md.KeyState != types.KeyStatePendingReplicaDeletion || md.DeletionDate != nil || md.PendingDeletionWindowInDays == nil || *md.PendingDeletionWindowInDays != 7 || md.Enabled {
			t.Errorf("primary %s, deletion date %v, window %v; want PendingReplicaDeletion, none, 7", md.KeyState, md.DeletionDate, md.PendingDeletionWindowInDays)
		}
	}
	waiting(t)
	if _, err := east.Encrypt(ctx, &kms.EncryptInput{KeyId: id, Plaintext: []byte("x")}); !isErr[*types.KMSInvalidStateException](err) {
		t.Errorf("Encrypt with the waiting primary: %v, want KMSInvalidStateException", err)
	}
	if _, err := east.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: id, ReplicaRegion: aws.String("eu-west-1")}); !isErr[*types.KMSInvalidStateException](err) {
		t.Errorf("ReplicateKey of the waiting primary: %v, want KMSInvalidStateException", err)
	}
	clock.Advance(30 * 24 * time.Hour)
	waiting(t) // as long as its replica lives

	replicaGone := clock.Now().Add(week)
	out := must(west.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)}))(t)
	if out.KeyState != types.KeyStatePendingDeletion || !out.DeletionDate.Equal(replicaGone) {
		t.Errorf("ScheduleKeyDeletion of the replica = %s %v, want PendingDeletion %v", out.KeyState, out.DeletionDate, replicaGone)
	}
	clock.Advance(week - time.Second)
	waiting(t)

	clock.Advance(time.Second)
	md := describe(t, east, *id)
	if want := replicaGone.Add(week); md.KeyState != types.KeyStatePendingDeletion || md.DeletionDate == nil || !md.DeletionDate.Equal(want) || md.PendingDeletionWindowInDays != nil {
		t.Errorf("primary once its replica is gone: %s, deletion date %v, window %v; want PendingDeletion %v", md.KeyState, md.DeletionDate, md.PendingDeletionWindowInDays, want)
	}
	if _, err := west.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id}); !isErr[*types.NotFoundException](err) {
		t.Errorf("DescribeKey of the deleted replica: %v, want NotFoundException", err)
	}
	if n := len(md.MultiRegionConfiguration.ReplicaKeys); n != 0 {
		t.Errorf("%d replicas left", n)
	}
	clock.Advance(week)
	if _, err := east.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: id}); !isErr[*types.NotFoundException](err) {
		t.Errorf("DescribeKey of the primary after its window: %v, want NotFoundException", err)
	}

	t.Run("cancelled", func(t *testing.T) {
		id := createKey(t, east, &kms.CreateKeyInput{MultiRegion: aws.Bool(true)}).KeyId
		must(east.ReplicateKey(ctx, &kms.ReplicateKeyInput{KeyId: id, ReplicaRegion: aws.String("us-west-2")}))(t)
		must(east.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id}))(t)
		must(east.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: id}))(t)
		if md := describe(t, east, *id); md.KeyState != types.KeyStateDisabled || md.PendingDeletionWindowInDays != nil || md.DeletionDate != nil {
			t.Errorf("after CancelKeyDeletion: %s, window %v, date %v; want Disabled", md.KeyState, md.PendingDeletionWindowInDays, md.DeletionDate)
		}
	})
}
