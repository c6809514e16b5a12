package kmscontract

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// RegionCase is a behaviour that spans regions: multi-Region keys.
type RegionCase struct {
	Reason string
	Run    func(t *testing.T, p kmsclient.Provider) any
	Want   any
}

// RunRegions runs every region case against a fresh model from newProvider,
// whose default region is us-east-1.
func RunRegions(t *testing.T, newProvider func(t *testing.T) kmsclient.Provider) {
	for name, tc := range RegionCases() {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.Want, tc.Run(t, newProvider(t))); diff != "" {
				t.Errorf("%s\n-want +got:\n%s", tc.Reason, diff)
			}
		})
	}
}

// RegionCases are the multi-Region behaviours.
func RegionCases() map[string]RegionCase {
	return map[string]RegionCase{
		"Replicas":            replicas(),
		"UpdatePrimaryRegion": updatePrimaryRegion(),
	}
}

func regionAPI(t *testing.T, p kmsclient.Provider, region string) kmsclient.API {
	t.Helper()
	api, err := p.For("", region)
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// describeSettled describes a key until it has left the passing states a
// new replica or an updated key shows for a while.
func describeSettled(t *testing.T, api kmsclient.API, id string) *kmsclient.Key {
	t.Helper()
	var k *kmsclient.Key
	eventually(t, "key "+id+" settled", func() bool {
		var err error
		k, err = api.DescribeKey(ctx, id)
		return err == nil && k.State != kmsclient.StateCreating && k.State != kmsclient.StateUpdating
	})
	return k
}

func replicas() RegionCase {
	return RegionCase{
		Reason: "A replica has its primary's key id in another region, its own description and tags, and the primary's rotation, which only the primary changes; only a multi-Region primary replicates, once per region.",
		Run: func(t *testing.T, p kmsclient.Provider) any {
			east, west := regionAPI(t, p, "us-east-1"), regionAPI(t, p, "eu-west-1")
			primary := create(t, east, kmsclient.CreateKeyInput{MultiRegion: true, Description: "primary"})
			single := create(t, east, kmsclient.CreateKeyInput{})
			if err := east.EnableRotation(ctx, primary.ID, 180); err != nil {
				t.Fatal(err)
			}
			in := kmsclient.ReplicateKeyInput{KeyID: primary.ID, Region: "eu-west-1", Description: "replica", Tags: map[string]string{"team": "a"}}
			answer, err := east.ReplicateKey(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			_, errAgain := east.ReplicateKey(ctx, in)
			_, errSingle := east.ReplicateKey(ctx, kmsclient.ReplicateKeyInput{KeyID: single.ID, Region: "eu-west-1"})
			_, errSame := east.ReplicateKey(ctx, kmsclient.ReplicateKeyInput{KeyID: primary.ID, Region: "us-east-1"})
			replica := describeSettled(t, west, primary.ID)
			described, _ := east.DescribeKey(ctx, primary.ID)
			var tags map[string]string
			eventually(t, "the replica's tags", func() bool {
				tags, _ = west.ListTags(ctx, primary.ID)
				return len(tags) > 0
			})
			rot, _ := west.GetRotation(ctx, primary.ID)
			return []any{answer.ID == primary.ID, answer.State, class(errAgain), class(errSingle), class(errSame),
				replica.ARN != primary.ARN, replica.Description, replica.State, replica.MultiRegionType, replica.PrimaryRegion,
				described.MultiRegionType, described.ReplicaRegions, tags, rot.Enabled, rot.PeriodInDays,
				class(west.EnableRotation(ctx, primary.ID, 90)), class(west.RotateOnDemand(ctx, primary.ID))}
		},
		Want: []any{true, "Creating", "AlreadyExists", "Invalid", "Invalid",
			true, "replica", "Enabled", "REPLICA", "us-east-1",
			"PRIMARY", []string{"eu-west-1"}, map[string]string{"team": "a"}, true, int32(180),
			"Invalid", "Invalid"},
	}
}

func updatePrimaryRegion() RegionCase {
	return RegionCase{
		Reason: "UpdatePrimaryRegion, sent to the primary's region, swaps primary and replica; the old primary can no longer do it; a primary with replicas scheduled for deletion waits for them, with no date.",
		Run: func(t *testing.T, p kmsclient.Provider) any {
			east, west := regionAPI(t, p, "us-east-1"), regionAPI(t, p, "eu-west-1")
			primary := create(t, east, kmsclient.CreateKeyInput{MultiRegion: true})
			if _, err := east.ReplicateKey(ctx, kmsclient.ReplicateKeyInput{KeyID: primary.ID, Region: "eu-west-1"}); err != nil {
				t.Fatal(err)
			}
			describeSettled(t, west, primary.ID)
			errMissing := east.UpdatePrimaryRegion(ctx, primary.ID, "ap-south-1")
			errUpdate := east.UpdatePrimaryRegion(ctx, primary.ID, "eu-west-1")
			oldPrimary := describeSettled(t, east, primary.ID)
			newPrimary := describeSettled(t, west, primary.ID)
			errAgain := east.UpdatePrimaryRegion(ctx, primary.ID, "eu-west-1")
			d, errDelete := west.ScheduleDeletion(ctx, primary.ID, 7)
			return []any{class(errMissing), class(errUpdate), oldPrimary.MultiRegionType, oldPrimary.PrimaryRegion,
				newPrimary.MultiRegionType, newPrimary.ReplicaRegions, class(errAgain), class(errDelete), d.State, d.Date == nil}
		},
		Want: []any{"NotFound", "", "REPLICA", "eu-west-1", "PRIMARY", []string{"us-east-1"}, "Invalid", "", "PendingReplicaDeletion", true},
	}
}
