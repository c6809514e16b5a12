// Package kmsfake is a stateful in-memory KMS for unit tests: one of the
// project's two models of KMS (the other is the KMS server in hack/kmsserver).
// The contract suite in internal/kmsclient/kmscontract runs against both, so
// they tell the same story.
package kmsfake

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

const (
	fakeAccount = "111122223333"
	fakeRegion  = "us-east-1"
)

// fakeOps maps every KMS operation the fake serves to whether KMS allows it on
// a key pending deletion.
var fakeOps = map[string]bool{
	"DescribeKey":          true,
	"GetKeyPolicy":         true,
	"GetKeyRotationStatus": true,
	"ListResourceTags":     true,
	"GetResources":         true,
	"ListKeyRotations":     true,
	"ListGrants":           true,
	"CancelKeyDeletion":    true,
	"RevokeGrant":          true,
	"RetireGrant":          true,
	"DeleteAlias":          true,
	"CreateKey":            false,
	"UpdateKeyDescription": false,
	"EnableKey":            false,
	"DisableKey":           false,
	"EnableKeyRotation":    false,
	"DisableKeyRotation":   false,
	"RotateKeyOnDemand":    false,
	"PutKeyPolicy":         false,
	"TagResource":          false,
	"UntagResource":        false,
	"ScheduleKeyDeletion":  false,
	"CreateAlias":          false,
	"UpdateAlias":          false,
	"CreateGrant":          false,
	"GetKeyLastUsage":      true,
	// Multi-Region keys (regions.go) and imported key material (imports.go).
	"ReplicateKey":              false,
	"UpdatePrimaryRegion":       false,
	"GetParametersForImport":    false,
	"ImportKeyMaterial":         false,
	"DeleteImportedKeyMaterial": false,
}

var aliasName = regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]{1,250}$`)

// Fake is a stateful in-memory KMS for unit tests. It answers like KMS where
// reconcilers depend on it (NotFound, AlreadyExists, InvalidState, key state
// transitions, alias resolution, grant name idempotency), records the KMS
// operation behind every call and can be told to fail.
type Fake struct {
	// Now is the fake's clock; replace it before the first call.
	Now func() time.Time

	// mu is the world's: one lock for every region, since multi-Region
	// calls change keys in two.
	mu      *sync.Mutex
	world   *world
	account string // of the world
	region  string
	seq     int
	keys    map[string]*fakeKey // by key id
	order   []string            // key ids in creation order, as ListKeys returns them
	aliases map[string]string   // alias name -> key id
	calls   []string
	inject  map[string][]injection
	lag     lag
	// trackingStart is when KMS began recording the keys' use
	// (SetTrackingStart); zero: before any key was created.
	trackingStart time.Time
}

// lag is what the fake shows late or differently, as real KMS does for a
// while after a change (the KMS server models the same with its consistency
// switches; see hack/kmsserver). Set through the Fake's test hooks.
type lag struct {
	principalIDs map[string]string // ARN -> the unique id ListGrants shows instead
	hidden       map[string]bool   // grant ids ListGrants does not show yet
	linger       bool              // revoked grants stay listed
	revoked      []kmsclient.Grant // revoked grants ListGrants still shows
	replicas     map[string]bool   // key ids of multi-Region primaries that have replicas
	untagged     map[string]bool   // key ids tag:GetResources does not show yet
}

type fakeKey struct {
	kmsclient.Key
	policy    string
	tags      map[string]string
	rotation  kmsclient.Rotation
	rotations []kmsclient.KeyRotation
	grants    []kmsclient.Grant
	// imports: the key's material and import parameters (origin EXTERNAL).
	imports imports
	lastUse *keyUse
}

// keyUse is a key's last cryptographic use.
type keyUse struct {
	op      string
	at      time.Time
	eventID string
}

type injection struct {
	err   error
	after bool // the call takes effect, then err replaces the lost response
}

var _ kmsclient.API = (*Fake)(nil)

// NewFake returns an empty fake KMS in us-east-1, alone in its world: a
// multi-Region key can only be replicated to regions of a FakeProvider.
func NewFake() *Fake { return newWorld(fakeAccount).fake(fakeRegion) }

func newFake(w *world, region string) *Fake {
	return &Fake{
		Now:     time.Now,
		mu:      &w.mu,
		world:   w,
		account: w.account,
		region:  region,
		keys:    map[string]*fakeKey{},
		aliases: map[string]string{},
		inject:  map[string][]injection{},
	}
}

// Fail makes the next times calls of KMS operation op (e.g. "PutKeyPolicy")
// return err without taking effect. NewError builds classified errors.
func (f *Fake) Fail(op string, err error, times int) { f.addInjection(op, injection{err: err}, times) }

// LoseResponse makes the next times calls of op take effect in KMS and then
// return err, as when the response is lost (timeout, crash after the call).
func (f *Fake) LoseResponse(op string, err error, times int) {
	f.addInjection(op, injection{err: err, after: true}, times)
}

func (f *Fake) addInjection(op string, inj injection, times int) {
	if _, ok := fakeOps[op]; !ok {
		panic(fmt.Sprintf("kmsclient.Fake: unknown KMS operation %q", op))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for range times {
		f.inject[op] = append(f.inject[op], inj)
	}
}

// Calls returns the KMS operations served so far, in order.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ResetCalls forgets the recorded calls.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Count returns how many times KMS operation op was called.
func (f *Fake) Count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == op {
			n++
		}
	}
	return n
}

// Keys returns every key in creation order, without recording a call: tests
// use it to assert that no duplicate key was created.
func (f *Fake) Keys() []kmsclient.Key {
	f.mu.Lock()
	defer f.mu.Unlock()
	keys := make([]kmsclient.Key, 0, len(f.order))
	for _, id := range f.order {
		keys = append(keys, f.keys[id].snapshot())
	}
	return keys
}

// Grants returns the grants on key id as they really are, without recording
// a call or applying any lag: tests use it to assert that no grant leaked or
// was lost.
func (f *Fake) Grants(id string) []kmsclient.Grant {
	f.mu.Lock()
	defer f.mu.Unlock()
	k, ok := f.keys[id]
	if !ok {
		return nil
	}
	return slices.Clone(k.grants)
}

// call records op and serves it with apply, around the next injected failure.
// The caller holds f.mu.
func (f *Fake) call(op string, apply func() error) error {
	f.calls = append(f.calls, op)
	q := f.inject[op]
	if len(q) == 0 {
		return apply()
	}
	inj := q[0]
	f.inject[op] = q[1:]
	if !inj.after {
		return inj.err
	}
	if err := apply(); err != nil {
		return err
	}
	return inj.err
}

// withKey serves op on the key keyID names (id, ARN, alias name or alias ARN).
func (f *Fake) withKey(op, keyID string, fn func(*fakeKey) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.call(op, func() error {
		k, err := f.resolve(op, keyID)
		if err != nil {
			return err
		}
		k.expire(f.Now())
		if kmsclient.PendingDeletion(k.State) && !fakeOps[op] {
			return kmsError(op, "KMSInvalidStateException", k.ARN+" is pending deletion.")
		}
		return fn(k)
	})
}

func (f *Fake) resolve(op, keyID string) (*fakeKey, error) {
	arnPrefix := f.arnPrefix()
	name := strings.TrimPrefix(keyID, arnPrefix)
	if strings.HasPrefix(name, "alias/") {
		id, ok := f.aliases[name]
		if !ok {
			return nil, kmsError(op, "NotFoundException", fmt.Sprintf("kmsclient.Alias %s%s is not found.", arnPrefix, name))
		}
		return f.keys[id], nil
	}
	k, ok := f.keys[strings.TrimPrefix(name, "key/")]
	if !ok {
		return nil, kmsError(op, "NotFoundException", fmt.Sprintf("Key '%skey/%s' does not exist", arnPrefix, name))
	}
	return k, nil
}

func (f *Fake) arnPrefix() string {
	return "arn:" + f.partition() + ":kms:" + f.region + ":" + f.account + ":"
}

// partition is the partition of the fake's region, as in real ARNs.
func (f *Fake) partition() string { return partitionOf(f.region) }

func kmsError(op, code, msg string) error {
	return kmsclient.CodeError(op, code, msg)
}

func (k *fakeKey) snapshot() kmsclient.Key {
	key := k.Key
	if k.DeletionDate != nil {
		d := *k.DeletionDate
		key.DeletionDate = &d
	}
	return key
}

func (f *Fake) DescribeKey(_ context.Context, keyID string) (*kmsclient.Key, error) {
	var key kmsclient.Key
	err := f.withKey("DescribeKey", keyID, func(k *fakeKey) error {
		key = f.describe(k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &key, nil
}

func (f *Fake) GetKeyPolicy(_ context.Context, keyID string) (string, error) {
	var policy string
	err := f.withKey("GetKeyPolicy", keyID, func(k *fakeKey) error {
		policy = k.policy
		return nil
	})
	return policy, err
}

func (f *Fake) GetRotation(_ context.Context, keyID string) (*kmsclient.Rotation, error) {
	var r kmsclient.Rotation
	err := f.withKey("GetKeyRotationStatus", keyID, func(k *fakeKey) error {
		if err := rotatable("GetKeyRotationStatus", k); err != nil {
			return err
		}
		// A replica shares its primary key's rotation.
		if p := f.primaryOf(k); p != nil {
			k = p
		}
		r = k.rotation
		if r.NextRotationDate != nil {
			d := *r.NextRotationDate
			r.NextRotationDate = &d
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (f *Fake) ListTags(_ context.Context, keyID string) (map[string]string, error) {
	var tags map[string]string
	err := f.withKey("ListResourceTags", keyID, func(k *fakeKey) error {
		tags = maps.Clone(k.tags)
		return nil
	})
	return tags, err
}

// FindKeys serves tag:GetResources, which lists keys pending deletion too.
func (f *Fake) FindKeys(_ context.Context, tags map[string]string) ([]kmsclient.TaggedKey, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var found []kmsclient.TaggedKey
	err := f.call("GetResources", func() error {
		for _, id := range f.order {
			k := f.keys[id]
			if len(k.tags) > 0 && hasTags(k.tags, tags) && !f.lag.untagged[id] {
				found = append(found, kmsclient.TaggedKey{ID: id, ARN: k.ARN, Tags: maps.Clone(k.tags)})
			}
		}
		return nil
	})
	return found, err
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func (f *Fake) CreateKey(_ context.Context, in kmsclient.CreateKeyInput) (*kmsclient.Key, error) {
	const op = "CreateKey"
	f.mu.Lock()
	defer f.mu.Unlock()
	var key kmsclient.Key
	err := f.call(op, func() error {
		if err := validateTags(op, nil, in.Tags); err != nil {
			return err
		}
		policy := in.Policy
		if policy == "" {
			policy = defaultPolicy(f.partition(), f.account)
		} else if !json.Valid([]byte(policy)) {
			return kmsError(op, "MalformedPolicyDocumentException", "The policy is not valid JSON.")
		}
		f.seq++
		id := fmt.Sprintf("%08x-0000-4000-8000-%012x", f.seq, f.seq)
		if in.MultiRegion {
			id = fmt.Sprintf("mrk-%032x", f.seq)
		}
		k := &fakeKey{
			Key: kmsclient.Key{
				ID:           id,
				ARN:          f.arnPrefix() + "key/" + id,
				Description:  in.Description,
				KeySpec:      orDefault(in.KeySpec, "SYMMETRIC_DEFAULT"),
				KeyUsage:     orDefault(in.KeyUsage, "ENCRYPT_DECRYPT"),
				Origin:       orDefault(in.Origin, "AWS_KMS"),
				MultiRegion:  in.MultiRegion,
				State:        kmsclient.StateEnabled,
				CreationDate: f.Now(),
			},
			policy: policy,
			tags:   maps.Clone(in.Tags),
		}
		if k.Origin == "EXTERNAL" {
			k.State = kmsclient.StatePendingImport
		}
		if k.tags == nil {
			k.tags = map[string]string{}
		}
		f.keys[id] = k
		f.order = append(f.order, id)
		if in.MultiRegion {
			f.world.multiRegion[id] = &family{primary: f.region}
		}
		key = f.describe(k)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &key, nil
}

// defaultPolicy is the policy KMS gives a key created without one, naming
// the account root in the key's partition.
func defaultPolicy(partition, account string) string {
	return `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:` +
		partition + `:iam::` + account + `:root"},"Action":"kms:*","Resource":"*"}]}`
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func validateTags(op string, existing, tags map[string]string) error {
	merged := maps.Clone(existing)
	if merged == nil {
		merged = map[string]string{}
	}
	for k, v := range tags {
		if strings.HasPrefix(k, "aws:") {
			return kmsError(op, "TagException", "Tags beginning with aws: are reserved")
		}
		merged[k] = v
	}
	if len(merged) > 50 {
		return kmsError(op, "TagException", "A key can have at most 50 tags")
	}
	return nil
}

func (f *Fake) UpdateDescription(_ context.Context, keyID, description string) error {
	return f.withKey("UpdateKeyDescription", keyID, func(k *fakeKey) error {
		k.Description = description
		return nil
	})
}

func (f *Fake) EnableKey(_ context.Context, keyID string) error {
	return f.withKey("EnableKey", keyID, func(k *fakeKey) error {
		if k.State == kmsclient.StatePendingImport {
			return kmsError("EnableKey", "KMSInvalidStateException", k.ARN+" is pending import.")
		}
		k.State = kmsclient.StateEnabled
		return nil
	})
}

func (f *Fake) DisableKey(_ context.Context, keyID string) error {
	return f.withKey("DisableKey", keyID, func(k *fakeKey) error {
		k.State = kmsclient.StateDisabled
		return nil
	})
}

// rotatable refuses rotation calls on keys KMS cannot rotate automatically.
func rotatable(op string, k *fakeKey) error {
	if k.KeySpec != "SYMMETRIC_DEFAULT" || k.Origin != "AWS_KMS" {
		return kmsError(op, "UnsupportedOperationException", k.ARN+" key type does not support rotation.")
	}
	return nil
}

// rotationWritable is rotatable plus what the rotation writes need: the
// Enabled state, and a key that is no replica (its primary key holds the
// family's rotation).
func (f *Fake) rotationWritable(op string, k *fakeKey) error {
	if err := rotatable(op, k); err != nil {
		return err
	}
	if k.State == kmsclient.StateDisabled {
		return kmsError(op, "DisabledException", k.ARN+" is disabled.")
	}
	return f.replicaRotationRefused(op, k)
}

func (f *Fake) EnableRotation(_ context.Context, keyID string, periodInDays int32) error {
	const op = "EnableKeyRotation"
	return f.withKey(op, keyID, func(k *fakeKey) error {
		if err := f.rotationWritable(op, k); err != nil {
			return err
		}
		if periodInDays == 0 {
			periodInDays = 365
		}
		if periodInDays < 90 || periodInDays > 2560 {
			return kmsError(op, "ValidationException", "RotationPeriodInDays must be between 90 and 2560")
		}
		// KMS counts the period from the day rotation is enabled.
		next := f.Now().AddDate(0, 0, int(periodInDays))
		k.rotation = kmsclient.Rotation{Enabled: true, PeriodInDays: periodInDays, NextRotationDate: &next}
		return nil
	})
}

func (f *Fake) DisableRotation(_ context.Context, keyID string) error {
	const op = "DisableKeyRotation"
	return f.withKey(op, keyID, func(k *fakeKey) error {
		if err := f.rotationWritable(op, k); err != nil {
			return err
		}
		k.rotation = kmsclient.Rotation{}
		return nil
	})
}

func (f *Fake) RotateOnDemand(_ context.Context, keyID string) error {
	const op = "RotateKeyOnDemand"
	return f.withKey(op, keyID, func(k *fakeKey) error {
		if k.Origin == "EXTERNAL" && k.KeySpec == "SYMMETRIC_DEFAULT" {
			return f.rotateImported(op, k)
		}
		if err := f.rotationWritable(op, k); err != nil {
			return err
		}
		k.rotations = append(k.rotations, kmsclient.KeyRotation{Date: f.Now(), Type: "ON_DEMAND"})
		return nil
	})
}

func (f *Fake) ListKeyRotations(_ context.Context, keyID string) ([]kmsclient.KeyRotation, error) {
	const op = "ListKeyRotations"
	var rotations []kmsclient.KeyRotation
	err := f.withKey(op, keyID, func(k *fakeKey) error {
		if k.Origin == "EXTERNAL" && k.KeySpec == "SYMMETRIC_DEFAULT" {
			rotations = k.imports.rotations()
			return nil
		}
		if err := rotatable(op, k); err != nil {
			return err
		}
		if p := f.primaryOf(k); p != nil {
			k = p
		}
		rotations = slices.Clone(k.rotations)
		return nil
	})
	return rotations, err
}

func (f *Fake) PutKeyPolicy(_ context.Context, keyID, policy string, _ bool) error {
	const op = "PutKeyPolicy"
	return f.withKey(op, keyID, func(k *fakeKey) error {
		if !json.Valid([]byte(policy)) {
			return kmsError(op, "MalformedPolicyDocumentException", "The policy is not valid JSON.")
		}
		k.policy = policy
		return nil
	})
}

func (f *Fake) TagKey(_ context.Context, keyID string, tags map[string]string) error {
	const op = "TagResource"
	return f.withKey(op, keyID, func(k *fakeKey) error {
		if err := validateTags(op, k.tags, tags); err != nil {
			return err
		}
		maps.Copy(k.tags, tags)
		return nil
	})
}

func (f *Fake) UntagKey(_ context.Context, keyID string, tagKeys []string) error {
	return f.withKey("UntagResource", keyID, func(k *fakeKey) error {
		for _, t := range tagKeys {
			delete(k.tags, t)
		}
		return nil
	})
}

func (f *Fake) ScheduleDeletion(_ context.Context, keyID string, pendingWindowInDays int32) (*kmsclient.Deletion, error) {
	const op = "ScheduleKeyDeletion"
	var d *kmsclient.Deletion
	err := f.withKey(op, keyID, func(k *fakeKey) error {
		if pendingWindowInDays == 0 {
			pendingWindowInDays = 30
		}
		if pendingWindowInDays < 7 || pendingWindowInDays > 30 {
			return kmsError(op, "ValidationException", "PendingWindowInDays must be between 7 and 30")
		}
		if f.hasReplicas(k) {
			k.State = kmsclient.StatePendingReplicaDeletion
			d = &kmsclient.Deletion{State: k.State}
			return nil
		}
		date := f.Now().AddDate(0, 0, int(pendingWindowInDays))
		k.State, k.DeletionDate = kmsclient.StatePendingDeletion, &date
		d = &kmsclient.Deletion{State: k.State, Date: &date}
		return nil
	})
	return d, err
}

func (f *Fake) CancelDeletion(_ context.Context, keyID string) error {
	return f.withKey("CancelKeyDeletion", keyID, func(k *fakeKey) error {
		if !kmsclient.PendingDeletion(k.State) {
			return kmsError("CancelKeyDeletion", "KMSInvalidStateException", k.ARN+" is not pending deletion.")
		}
		// KMS never re-enables a key on its own.
		k.State, k.DeletionDate = kmsclient.StateDisabled, nil
		return nil
	})
}

func (f *Fake) GetAlias(_ context.Context, name string) (*kmsclient.Alias, error) {
	if err := kmsclient.CheckAliasName(name); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var alias *kmsclient.Alias
	err := f.call("DescribeKey", func() error {
		k, err := f.resolve("DescribeKey", name)
		if err != nil {
			return err
		}
		alias = &kmsclient.Alias{Name: name, ARN: f.arnPrefix() + name, TargetKeyID: k.ID}
		return nil
	})
	return alias, err
}

func (f *Fake) CreateAlias(_ context.Context, name, keyID string) error {
	const op = "CreateAlias"
	return f.withKey(op, keyID, func(k *fakeKey) error {
		if !aliasName.MatchString(name) || strings.HasPrefix(name, "alias/aws/") {
			return kmsError(op, "InvalidAliasNameException", "kmsclient.Alias must match "+aliasName.String()+" and must not begin with alias/aws/")
		}
		if _, ok := f.aliases[name]; ok {
			return kmsError(op, "AlreadyExistsException", "An alias with the name "+f.arnPrefix()+name+" already exists")
		}
		f.aliases[name] = k.ID
		return nil
	})
}

func (f *Fake) UpdateAlias(_ context.Context, name, keyID string) error {
	const op = "UpdateAlias"
	return f.withKey(op, keyID, func(k *fakeKey) error {
		if _, ok := f.aliases[name]; !ok {
			return kmsError(op, "NotFoundException", "Alias "+f.arnPrefix()+name+" is not found.")
		}
		f.aliases[name] = k.ID
		return nil
	})
}

func (f *Fake) DeleteAlias(_ context.Context, name string) error {
	const op = "DeleteAlias"
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.call(op, func() error {
		if _, ok := f.aliases[name]; !ok {
			return kmsError(op, "NotFoundException", "Alias "+f.arnPrefix()+name+" is not found.")
		}
		delete(f.aliases, name)
		return nil
	})
}

func (f *Fake) CreateGrant(_ context.Context, in kmsclient.GrantInput) (string, error) {
	const op = "CreateGrant"
	var id string
	err := f.withKey(op, in.KeyID, func(k *fakeKey) error {
		if err := validateGrant(in); err != nil {
			return err
		}
		g := kmsclient.Grant{
			KeyID:                    k.ARN, // ListGrants returns the key ARN
			Name:                     in.Name,
			GranteePrincipal:         in.GranteePrincipal,
			GranteeServicePrincipal:  in.GranteeServicePrincipal,
			RetiringPrincipal:        in.RetiringPrincipal,
			RetiringServicePrincipal: in.RetiringServicePrincipal,
			Operations:               slices.Sorted(slices.Values(in.Operations)),
			EncryptionContextSubset:  nilIfEmpty(maps.Clone(in.EncryptionContextSubset)),
			EncryptionContextEquals:  nilIfEmpty(maps.Clone(in.EncryptionContextEquals)),
			SourceARN:                in.SourceARN,
		}
		// A named grant is idempotent: the same name and parameters return
		// the existing grant. Names are not unique otherwise.
		if g.Name != "" {
			for _, old := range k.grants {
				if sameGrant(old, g) {
					id = old.GrantID
					return nil
				}
			}
		}
		f.seq++
		g.GrantID = fmt.Sprintf("%064x", f.seq)
		k.grants = append(k.grants, g)
		id = g.GrantID
		return nil
	})
	return id, err
}

// servicePrincipal is the form of a service principal KMS accepts
// (logs.amazonaws.com), as the KMS server checks it.
var servicePrincipal = regexp.MustCompile(`^([A-Za-z0-9-]+)\.([A-Za-z0-9-]+)(\.[A-Za-z0-9-]+)+$`)

// validateGrant refuses what KMS refuses with a ValidationException: one
// grantee, of either kind; at most one retiring principal, and one with a
// grantee service principal, which also needs a SourceArn constraint
// (https://docs.aws.amazon.com/kms/latest/developerguide/create-grant-overview.html).
func validateGrant(in kmsclient.GrantInput) error {
	invalid := func(msg string) error { return kmsError("CreateGrant", "ValidationException", msg) }
	switch {
	case len(in.Operations) == 0:
		return invalid("Operations are required")
	case (in.GranteePrincipal == "") == (in.GranteeServicePrincipal == ""):
		return invalid("You must specify either GranteePrincipal or GranteeServicePrincipal, but not both")
	case in.RetiringPrincipal != "" && in.RetiringServicePrincipal != "":
		return invalid("You can specify either RetiringPrincipal or RetiringServicePrincipal, but not both")
	case in.GranteeServicePrincipal != "" && in.RetiringPrincipal == "" && in.RetiringServicePrincipal == "":
		return invalid("When you specify a GranteeServicePrincipal, you must also specify either a RetiringPrincipal or a RetiringServicePrincipal")
	case in.GranteeServicePrincipal != "" && in.SourceARN == "":
		return invalid("A SourceArn grant constraint is required when GranteeServicePrincipal is specified")
	case in.SourceARN != "" && !strings.HasPrefix(in.SourceARN, "arn:"):
		return invalid("constraints.sourceArn must be an ARN")
	}
	for _, p := range []string{in.GranteeServicePrincipal, in.RetiringServicePrincipal} {
		if p != "" && !servicePrincipal.MatchString(p) {
			return invalid("Value '" + p + "' failed to satisfy constraint: Member must satisfy regular expression pattern: " + servicePrincipal.String())
		}
	}
	return nil
}

func sameGrant(a, b kmsclient.Grant) bool {
	return a.Name == b.Name && a.GranteePrincipal == b.GranteePrincipal && a.GranteeServicePrincipal == b.GranteeServicePrincipal &&
		a.RetiringPrincipal == b.RetiringPrincipal && a.RetiringServicePrincipal == b.RetiringServicePrincipal &&
		slices.Equal(a.Operations, b.Operations) && a.SourceARN == b.SourceARN &&
		maps.Equal(a.EncryptionContextSubset, b.EncryptionContextSubset) &&
		maps.Equal(a.EncryptionContextEquals, b.EncryptionContextEquals)
}

func (f *Fake) ListGrants(_ context.Context, keyID string) ([]kmsclient.Grant, error) {
	var grants []kmsclient.Grant
	err := f.withKey("ListGrants", keyID, func(k *fakeKey) error {
		for _, g := range append(slices.Clone(k.grants), f.lingering(k.ARN)...) {
			if f.lag.hidden[g.GrantID] {
				continue
			}
			g.Operations = slices.Clone(g.Operations)
			g.EncryptionContextSubset = maps.Clone(g.EncryptionContextSubset)
			g.EncryptionContextEquals = maps.Clone(g.EncryptionContextEquals)
			// KMS lists service principals as given; only IAM principals
			// show as unique ids for a while.
			g.GranteePrincipal = f.shownPrincipal(g.GranteePrincipal)
			g.RetiringPrincipal = f.shownPrincipal(g.RetiringPrincipal)
			grants = append(grants, g)
		}
		return nil
	})
	return grants, err
}

func (f *Fake) lingering(keyARN string) []kmsclient.Grant {
	var out []kmsclient.Grant
	for _, g := range f.lag.revoked {
		if g.KeyID == keyARN {
			out = append(out, g)
		}
	}
	return out
}

func (f *Fake) shownPrincipal(p string) string {
	if id, ok := f.lag.principalIDs[p]; ok {
		return id
	}
	return p
}

// ShowPrincipalAs makes ListGrants show principal arn as id (AROA...), as KMS
// does for a while after an IAM role is created.
func (f *Fake) ShowPrincipalAs(arn, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lag.principalIDs == nil {
		f.lag.principalIDs = map[string]string{}
	}
	f.lag.principalIDs[arn] = id
}

// HideGrant makes ListGrants leave out grant id, as KMS does for up to
// minutes after CreateGrant; RevokeGrant and RetireGrant still find it.
func (f *Fake) HideGrant(id string, hidden bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lag.hidden == nil {
		f.lag.hidden = map[string]bool{}
	}
	f.lag.hidden[id] = hidden
}

// LingerRevoked makes ListGrants go on showing grants once revoked or
// retired, as KMS does for a while, until it is called with false.
func (f *Fake) LingerRevoked(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lag.linger = on
	if !on {
		f.lag.revoked = nil
	}
}

// HideFromTagSearch makes tag:GetResources leave out key id, as the tagging
// API does for a while after a key is created or tagged.
func (f *Fake) HideFromTagSearch(id string, hidden bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lag.untagged == nil {
		f.lag.untagged = map[string]bool{}
	}
	f.lag.untagged[id] = hidden
}

// SetHasReplicas makes key id a multi-Region primary with replicas:
// ScheduleKeyDeletion then leaves it PendingReplicaDeletion with no date.
func (f *Fake) SetHasReplicas(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.lag.replicas == nil {
		f.lag.replicas = map[string]bool{}
	}
	f.lag.replicas[id] = true
}

func (f *Fake) RevokeGrant(_ context.Context, keyID, grantID string) error {
	return f.removeGrant("RevokeGrant", keyID, grantID)
}

func (f *Fake) RetireGrant(_ context.Context, keyID, grantID string) error {
	return f.removeGrant("RetireGrant", keyID, grantID)
}

func (f *Fake) removeGrant(op, keyID, grantID string) error {
	return f.withKey(op, keyID, func(k *fakeKey) error {
		i := slices.IndexFunc(k.grants, func(g kmsclient.Grant) bool { return g.GrantID == grantID })
		if i < 0 {
			return kmsError(op, "NotFoundException", "Grant ID "+grantID+" not found")
		}
		if f.lag.linger {
			f.lag.revoked = append(f.lag.revoked, k.grants[i])
		}
		k.grants = slices.Delete(k.grants, i, i+1)
		return nil
	})
}

// GetKeyLastUsage answers as KMS does: the last use, or none; tracked since
// the later of the key's creation and the start of tracking. An alias name
// is no key id: NotFound, as the KMS server answers.
func (f *Fake) GetKeyLastUsage(_ context.Context, keyID string) (*kmsclient.LastUsage, error) {
	const op = "GetKeyLastUsage"
	if strings.Contains(keyID, "alias/") {
		f.mu.Lock()
		defer f.mu.Unlock()
		return nil, f.call(op, func() error { return kmsError(op, "NotFoundException", "Key '"+keyID+"' does not exist") })
	}
	var u kmsclient.LastUsage
	err := f.withKey(op, keyID, func(k *fakeKey) error {
		u = kmsclient.LastUsage{TrackingStart: k.CreationDate, KeyCreation: k.CreationDate, At: f.Now()}
		if f.trackingStart.After(k.CreationDate) {
			u.TrackingStart = f.trackingStart
		}
		if use := k.lastUse; use != nil {
			at := use.at
			u.Operation, u.Time, u.CloudTrailEventID = use.op, &at, use.eventID
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &u, nil
}

// UseKey makes one successful cryptographic call with the key (op is
// Encrypt, Decrypt, Sign, ...), as an application would: the operator never
// does. KMS records it for GetKeyLastUsage once tracking has begun. A key
// that is not Enabled refuses it (DisabledException, or
// KMSInvalidStateException) and records nothing.
func (f *Fake) UseKey(_ context.Context, keyID, op string) error {
	// Not in fakeOps: refused on a key pending deletion, like every
	// cryptographic operation.
	return f.withKey(op, keyID, func(k *fakeKey) error {
		if k.State != kmsclient.StateEnabled {
			return kmsError(op, "DisabledException", k.ARN+" is "+k.State+".")
		}
		now := f.Now()
		if !now.Before(f.trackingStart) {
			f.seq++
			k.lastUse = &keyUse{op: op, at: now, eventID: fmt.Sprintf("%08x-0000-4000-8000-%012x", f.seq, f.seq)}
		}
		return nil
	})
}

// SetTrackingStart sets when KMS began recording the keys' use: a time
// ahead of Now means KMS does not track yet.
func (f *Fake) SetTrackingStart(at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trackingStart = at
}

// FakeProvider hands out one Fake per account and region, created on first
// use: the operator's own account is 111122223333; an AWSAccount's is the
// account of its role, once SetAccount set it up. The regions of an account
// share one world (multi-Region keys replicate between them). It implements
// kmsclient.Accounts too.
type FakeProvider struct {
	mu       sync.Mutex
	worlds   map[string]*world // by account id
	accounts map[string]kmsclient.AccountConfig
	// VerifyErr, when set for an account, is what VerifyAccount answers.
	VerifyErr map[string]error
}

var (
	_ kmsclient.Provider = (*FakeProvider)(nil)
	_ kmsclient.Accounts = (*FakeProvider)(nil)
)

// NewFakeProvider returns a provider whose default region is us-east-1.
func NewFakeProvider() *FakeProvider {
	return &FakeProvider{worlds: map[string]*world{}, accounts: map[string]kmsclient.AccountConfig{}, VerifyErr: map[string]error{}}
}

// For implements kmsclient.Provider; an account not set up is an error, as
// in the SDK provider.
func (p *FakeProvider) For(account, region string) (kmsclient.API, error) {
	if account != "" {
		p.mu.Lock()
		_, ok := p.accounts[account]
		p.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("AWSAccount %s is not set up in the operator yet", account)
		}
	}
	return p.FakeIn(account, region), nil
}

// Fake returns the fake KMS of the operator's own account in region ("" is
// us-east-1).
func (p *FakeProvider) Fake(region string) *Fake { return p.FakeIn("", region) }

// FakeIn returns the fake KMS of an account (an AWSAccount's name, "" for
// the operator's own) in region.
func (p *FakeProvider) FakeIn(account, region string) *Fake {
	p.mu.Lock()
	defer p.mu.Unlock()
	id := fakeAccount
	if cfg, ok := p.accounts[account]; ok {
		id = accountOfARN(cfg.RoleARN)
		region = orDefault(region, cfg.Region)
	}
	w, ok := p.worlds[id]
	if !ok {
		w = newWorld(id)
		p.worlds[id] = w
	}
	return w.fake(orDefault(region, fakeRegion))
}

// SetAccount implements kmsclient.Accounts.
func (p *FakeProvider) SetAccount(name string, cfg kmsclient.AccountConfig) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.accounts[name] = cfg
}

// RemoveAccount implements kmsclient.Accounts.
func (p *FakeProvider) RemoveAccount(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.accounts, name)
}

// VerifyAccount implements kmsclient.Accounts: the role's account, a session
// ARN and an expiry of SessionDuration from now, or VerifyErr[name].
func (p *FakeProvider) VerifyAccount(_ context.Context, name string) (*kmsclient.Identity, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cfg, ok := p.accounts[name]
	if !ok {
		return nil, fmt.Errorf("AWSAccount %s is not set up in the operator yet", name)
	}
	if err := p.VerifyErr[name]; err != nil {
		return nil, err
	}
	id := accountOfARN(cfg.RoleARN)
	role := cfg.RoleARN[strings.LastIndex(cfg.RoleARN, "/")+1:]
	return &kmsclient.Identity{AccountID: id, ARN: "arn:aws:sts::" + id + ":assumed-role/" + role + "/" + cfg.SessionName,
		Expires: time.Now().Add(cfg.SessionDuration)}, nil
}

// accountOfARN is the account field of an ARN.
func accountOfARN(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

// nilIfEmpty makes "no constraint" one value, as kmsclient's ListGrants does.
func nilIfEmpty(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}
