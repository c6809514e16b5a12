package kmsfake

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// world is what the fakes of one account of a FakeProvider share: one lock,
// and the relations of multi-Region keys, which span regions.
type world struct {
	account string
	// mu serializes every call of every region's fake.
	mu sync.Mutex

	fakesMu sync.Mutex // guards fakes only: a call holding mu may look a region up
	fakes   map[string]*Fake

	// multiRegion relates a multi-Region key id to its primary region and
	// replicas (guarded by mu).
	multiRegion map[string]*family
}

// family is a multi-Region key: where its primary is, where its replicas are.
type family struct {
	primary  string
	replicas []string
}

func newWorld(account string) *world {
	return &world{account: account, fakes: map[string]*Fake{}, multiRegion: map[string]*family{}}
}

// fake returns the world's fake of region, creating it.
func (w *world) fake(region string) *Fake {
	w.fakesMu.Lock()
	defer w.fakesMu.Unlock()
	f, ok := w.fakes[region]
	if !ok {
		f = newFake(w, region)
		w.fakes[region] = f
	}
	return f
}

// describe is a key's metadata as DescribeKey answers it: with its
// multi-Region configuration and its current key material. f.mu is held.
func (f *Fake) describe(k *fakeKey) kmsclient.Key {
	key := k.snapshot()
	if fam := f.world.multiRegion[k.ID]; fam != nil {
		key.MultiRegionType = kmsclient.MultiRegionReplica
		if fam.primary == f.region {
			key.MultiRegionType = kmsclient.MultiRegionPrimary
		}
		key.PrimaryRegion, key.ReplicaRegions = fam.primary, slices.Clone(fam.replicas)
	}
	k.imports.describe(&key)
	return key
}

// primaryOf returns the primary key of a replica, nil for a key that is no
// replica. f.mu is held.
func (f *Fake) primaryOf(k *fakeKey) *fakeKey {
	fam := f.world.multiRegion[k.ID]
	if fam == nil || fam.primary == f.region {
		return nil
	}
	return f.world.fake(fam.primary).keys[k.ID]
}

// hasReplicas reports whether a multi-Region primary key has replicas, which
// make its scheduled deletion wait (PendingReplicaDeletion). f.mu is held.
func (f *Fake) hasReplicas(k *fakeKey) bool {
	fam := f.world.multiRegion[k.ID]
	return f.lag.replicas[k.ID] || (fam != nil && fam.primary == f.region && len(fam.replicas) > 0)
}

// replicaRotationRefused answers rotation writes on a replica, which are the
// primary key's to make.
func (f *Fake) replicaRotationRefused(op string, k *fakeKey) error {
	if p := f.primaryOf(k); p != nil {
		return kmsError(op, "UnsupportedOperationException", k.ARN+" is a multi-Region replica key: rotation is managed on its primary key.")
	}
	return nil
}

// ReplicateKey makes a replica of a multi-Region primary key of this region in
// another region of the world: same key id, spec and material, its own
// description, policy and tags. KMS answers while the replica is Creating;
// the fake's replica is Enabled (PendingImport for imported material) by the
// next call.
func (f *Fake) ReplicateKey(_ context.Context, in kmsclient.ReplicateKeyInput) (*kmsclient.Key, error) {
	const op = "ReplicateKey"
	var out kmsclient.Key
	err := f.withKey(op, in.KeyID, func(k *fakeKey) error {
		fam := f.world.multiRegion[k.ID]
		switch {
		case fam == nil || fam.primary != f.region:
			return kmsError(op, "UnsupportedOperationException", k.ARN+" is not a multi-region primary key.")
		case in.Region == f.region || partitionOf(in.Region) != f.partition():
			return kmsError(op, "ValidationException", "ReplicaRegion "+in.Region+" must be another region of the primary key's partition")
		case slices.Contains(fam.replicas, in.Region):
			return kmsError(op, "AlreadyExistsException", strings.Replace(k.ARN, ":"+f.region+":", ":"+in.Region+":", 1)+" already exists")
		}
		if err := validateTags(op, nil, in.Tags); err != nil {
			return err
		}
		rf := f.world.fake(in.Region)
		r := &fakeKey{Key: k.snapshot(), policy: in.Policy, tags: maps.Clone(in.Tags)}
		r.ARN = rf.arnPrefix() + "key/" + k.ID
		r.Description, r.CreationDate, r.State, r.DeletionDate = in.Description, f.Now(), kmsclient.StateEnabled, nil
		if r.Origin == "EXTERNAL" {
			// "If you replicate a multi-Region primary key with imported key
			// material, the replica key is created with no key material."
			r.State = kmsclient.StatePendingImport
		}
		if r.policy == "" {
			r.policy = defaultPolicy(rf.partition(), rf.account)
		}
		if r.tags == nil {
			r.tags = map[string]string{}
		}
		rf.keys[k.ID] = r
		rf.order = append(rf.order, k.ID)
		fam.replicas = append(fam.replicas, in.Region)
		out = rf.describe(r)
		out.State = kmsclient.StateCreating
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// UpdatePrimaryRegion swaps the primary key of this region with its replica
// in region. The rotation settings and history, which the primary key holds
// for the family, move with it.
func (f *Fake) UpdatePrimaryRegion(_ context.Context, keyID, region string) error {
	const op = "UpdatePrimaryRegion"
	return f.withKey(op, keyID, func(k *fakeKey) error {
		fam := f.world.multiRegion[k.ID]
		switch {
		case fam == nil || fam.primary != f.region:
			return kmsError(op, "UnsupportedOperationException", k.ARN+" is not a multi-region primary key.")
		case region == f.region:
			return kmsError(op, "ValidationException", region+" is already the primary Region of "+k.ID)
		case !slices.Contains(fam.replicas, region):
			return kmsError(op, "NotFoundException", "Key '"+strings.Replace(k.ARN, ":"+f.region+":", ":"+region+":", 1)+"' does not exist")
		}
		nf := f.world.fake(region)
		next := nf.keys[k.ID]
		if kmsclient.PendingDeletion(next.State) {
			return kmsError(op, "KMSInvalidStateException", next.ARN+" is pending deletion.")
		}
		next.rotation, next.rotations = k.rotation, slices.Clone(k.rotations)
		fam.replicas[slices.Index(fam.replicas, region)] = f.region
		fam.primary = region
		return nil
	})
}

// partitionOf is the partition of a region's ARNs.
func partitionOf(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	}
	return "aws"
}
