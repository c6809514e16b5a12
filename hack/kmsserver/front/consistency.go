package front

// Eventual consistency: real AWS KMS "follows an eventual consistency model
// ... it typically takes less than a few seconds for the change to propagate
// throughout the system, but in some cases it can take several minutes. You
// might get unexpected errors, such as a NotFoundException or an
// InvalidStateException, during this time"
// (https://docs.aws.amazon.com/kms/latest/developerguide/programming-eventual-consistency.html).
// Each behaviour is a switch of Consistency, all off by default.
//
// The switches that show the past of keys (keyListLag, tagLag,
// taggingAPILag, staleAfterWrite) read a per-key history: a snapshot of the
// key (exists, state, tags) before and after every write. A read "as of"
// a moment sees the last snapshot taken at or before it, so what a test sees
// inside a window is deterministic. The history is in memory: after a
// restart every key counts as settled.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/handler"
)

// Consistency sets how far behind real AWS's eventually consistent reads
// are. The zero value is a strongly consistent server.
type Consistency struct {
	// KeyListLag: ListKeys omits keys created less than this ago.
	KeyListLag Duration `json:"keyListLag"`
	// TagLag: ListResourceTags shows a key's tags as they were this long
	// ago (a new key: none).
	TagLag Duration `json:"tagLag"`
	// TaggingAPILag: tag:GetResources shows keys and tags as they were this
	// long ago.
	TaggingAPILag Duration `json:"taggingAPILag"`
	// GrantListLag: ListGrants and ListRetirableGrants omit grants created
	// less than this ago and still list grants revoked or retired less than
	// this ago. "When you create, retire, or revoke a grant, there might be
	// a brief delay, usually less than five minutes, until the grant is
	// available throughout KMS"
	// (https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateGrant.html).
	GrantListLag Duration `json:"grantListLag"`
	// StaleAfterWrite: after CreateKey, EnableKey, DisableKey,
	// CancelKeyDeletion or ScheduleKeyDeletion, the operations on that key
	// other than DescribeKey see it as it was this long ago: absent after
	// CreateKey (NotFoundException), pending deletion after
	// CancelKeyDeletion (KMSInvalidStateException), disabled after
	// EnableKey, enabled after DisableKey. The eventual consistency page
	// above gives GetParametersForImport right after CreateKey answering
	// NotFoundException as its example.
	StaleAfterWrite Duration `json:"staleAfterWrite"`
	// PrincipalIDWindow: ListGrants shows a grantee or retiring principal
	// that is an IAM role or user created less than this ago as its unique
	// id (AROA.../AIDA...), as AWS does for new roles
	// (https://github.com/aws/aws-sdk-go/issues/1718: "expected behavior";
	// Terraform's aws_kms_grant waits until it reads ARNs,
	// https://github.com/hashicorp/terraform-provider-aws/blob/main/internal/service/kms/grant.go).
	PrincipalIDWindow Duration `json:"principalIDWindow"`
	// FreshPrincipalWindow: CreateGrant naming a principal created less than
	// this ago fails with InvalidArnException (Terraform retries it, see
	// grant.go above); CreateKey, PutKeyPolicy or ReplicateKey whose policy
	// names one fails with MalformedPolicyDocumentException ("The principals
	// in the key policy must exist and be visible to KMS. When you create a
	// new AWS principal, you might need to enforce a delay before including
	// the new principal in a key policy",
	// https://docs.aws.amazon.com/kms/latest/APIReference/API_CreateKey.html).
	FreshPrincipalWindow Duration `json:"freshPrincipalWindow"`
	// PrincipalsCreatedOnFirstUse: a principal ARN the server has not seen
	// before counts as created when it is first seen, so every test meets
	// the two windows above. POST /_principals registers one explicitly.
	PrincipalsCreatedOnFirstUse bool `json:"principalsCreatedOnFirstUse"`
	// ReplicaCreation: a replica stays Creating this long after ReplicateKey
	// answers (0: Enabled at once). "The replica key is created in the
	// Creating key state ... When the process completes, the key state of
	// the replica key changes to Enabled"
	// (https://docs.aws.amazon.com/kms/latest/APIReference/API_ReplicateKey.html).
	// Not in the realistic preset.
	ReplicaCreation Duration `json:"replicaCreation,omitempty"`
	// PrimaryRegionUpdate: after UpdatePrimaryRegion the old and new primary
	// keys are Updating this long ("a transient key state of Updating",
	// https://docs.aws.amazon.com/kms/latest/APIReference/API_UpdatePrimaryRegion.html).
	// Not in the realistic preset.
	PrimaryRegionUpdate Duration `json:"primaryRegionUpdate,omitempty"`
}

// Consistency presets, by name.
const (
	ConsistencyOff       = "off"
	ConsistencyRealistic = "realistic"
)

// realistic lags by a few seconds each: long enough for every test to meet
// them, short enough to converge quickly.
var realistic = Consistency{
	KeyListLag:                  Duration(3 * time.Second),
	TagLag:                      Duration(3 * time.Second),
	TaggingAPILag:               Duration(5 * time.Second),
	GrantListLag:                Duration(3 * time.Second),
	StaleAfterWrite:             Duration(2 * time.Second),
	PrincipalIDWindow:           Duration(10 * time.Second),
	FreshPrincipalWindow:        Duration(2 * time.Second),
	PrincipalsCreatedOnFirstUse: true,
}

func preset(name string) (Consistency, error) {
	switch name {
	case "", ConsistencyOff:
		return Consistency{}, nil
	case ConsistencyRealistic:
		return realistic, nil
	}
	return Consistency{}, fmt.Errorf("consistency preset %q: want %s or %s", name, ConsistencyOff, ConsistencyRealistic)
}

// UnmarshalJSON accepts a preset name ("realistic", "off") or an object,
// whose optional "preset" the other fields override:
// {"preset":"realistic","grantListLag":"0s"}.
func (c *Consistency) UnmarshalJSON(b []byte) error {
	var name string
	if json.Unmarshal(b, &name) == nil {
		p, err := preset(name)
		*c = p
		return err
	}
	var head struct {
		Preset string `json:"preset"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return err
	}
	p, err := preset(head.Preset)
	if err != nil {
		return err
	}
	type plain Consistency
	v := struct {
		Preset string `json:"preset"`
		plain
	}{plain: plain(p)}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("consistency: %w", err)
	}
	*c = Consistency(v.plain)
	return nil
}

func (c Consistency) check() error {
	for name, d := range map[string]Duration{
		"keyListLag": c.KeyListLag, "tagLag": c.TagLag, "taggingAPILag": c.TaggingAPILag,
		"grantListLag": c.GrantListLag, "staleAfterWrite": c.StaleAfterWrite,
		"principalIDWindow": c.PrincipalIDWindow, "freshPrincipalWindow": c.FreshPrincipalWindow,
		"replicaCreation": c.ReplicaCreation, "primaryRegionUpdate": c.PrimaryRegionUpdate,
	} {
		if d < 0 {
			return fmt.Errorf("consistency %s %s is negative", name, time.Duration(d))
		}
	}
	return nil
}

// horizon is how much of the keys' past the switches can ask for.
func (c Consistency) horizon() time.Duration {
	return time.Duration(max(c.KeyListLag, c.TagLag, c.TaggingAPILag, c.StaleAfterWrite))
}

// consistencyFlags defines --realistic and a flag per switch, each with an
// environment variable; a switch given overrides the preset.
func consistencyFlags(fs *flag.FlagSet, getenv func(string) string) func() (Consistency, error) {
	realisticFlag := &optional{env: getenv("KMS_REALISTIC"), isBool: true}
	fs.Var(realisticFlag, "realistic", "start from the realistic eventual consistency preset (a few seconds each); the flags below override it (env KMS_REALISTIC)")
	durations := []struct {
		name, env, usage string
		field            func(*Consistency) *Duration
	}{
		{"key-list-lag", "KMS_KEY_LIST_LAG", "ListKeys omits keys created less than this ago", func(c *Consistency) *Duration { return &c.KeyListLag }},
		{"tag-lag", "KMS_TAG_LAG", "ListResourceTags shows tags as they were this long ago", func(c *Consistency) *Duration { return &c.TagLag }},
		{"tagging-api-lag", "KMS_TAGGING_API_LAG", "tag:GetResources shows keys and tags as they were this long ago", func(c *Consistency) *Duration { return &c.TaggingAPILag }},
		{"grant-list-lag", "KMS_GRANT_LIST_LAG", "ListGrants omits grants created, and keeps grants revoked, less than this ago", func(c *Consistency) *Duration { return &c.GrantListLag }},
		{"stale-after-write", "KMS_STALE_AFTER_WRITE", "after a key's create/enable/disable/schedule/cancel, operations but DescribeKey see its previous state this long", func(c *Consistency) *Duration { return &c.StaleAfterWrite }},
		{"principal-id-window", "KMS_PRINCIPAL_ID_WINDOW", "ListGrants shows roles/users created less than this ago as unique ids (AROA.../AIDA...)", func(c *Consistency) *Duration { return &c.PrincipalIDWindow }},
		{"fresh-principal-window", "KMS_FRESH_PRINCIPAL_WINDOW", "grants and key policies naming roles/users created less than this ago are refused", func(c *Consistency) *Duration { return &c.FreshPrincipalWindow }},
		{"replica-creation", "KMS_REPLICA_CREATION", "a replica stays Creating this long after ReplicateKey", func(c *Consistency) *Duration { return &c.ReplicaCreation }},
		{"primary-region-update", "KMS_PRIMARY_REGION_UPDATE", "after UpdatePrimaryRegion both keys stay Updating this long", func(c *Consistency) *Duration { return &c.PrimaryRegionUpdate }},
	}
	values := make([]*optional, len(durations))
	for i, d := range durations {
		values[i] = &optional{env: getenv(d.env)}
		fs.Var(values[i], d.name, d.usage+" (a `duration`; env "+d.env+")")
	}
	firstUse := &optional{env: getenv("KMS_PRINCIPALS_CREATED_ON_FIRST_USE"), isBool: true}
	fs.Var(firstUse, "principals-created-on-first-use", "a principal first seen counts as created then (env KMS_PRINCIPALS_CREATED_ON_FIRST_USE)")

	return func() (Consistency, error) {
		var c Consistency
		if on, err := realisticFlag.boolValue(); err != nil {
			return c, fmt.Errorf("realistic: %w", err)
		} else if on {
			c = realistic
		}
		for i, d := range durations {
			if values[i].value() == "" {
				continue
			}
			v, err := time.ParseDuration(values[i].value())
			if err != nil {
				return c, fmt.Errorf("%s: %w", d.name, err)
			}
			*d.field(&c) = Duration(v)
		}
		if firstUse.value() != "" {
			on, err := firstUse.boolValue()
			if err != nil {
				return c, fmt.Errorf("principals-created-on-first-use: %w", err)
			}
			c.PrincipalsCreatedOnFirstUse = on
		}
		return c, c.check()
	}
}

// optional is a flag whose default comes from an environment variable and
// that tells whether either gave it a value.
type optional struct {
	env    string
	set    string
	ok     bool
	isBool bool
}

func (o *optional) String() string {
	if o == nil {
		return ""
	}
	return o.value()
}

func (o *optional) Set(s string) error {
	o.set, o.ok = s, true
	return nil
}

func (o *optional) IsBoolFlag() bool { return o.isBool }

func (o *optional) value() string {
	if o.ok {
		return o.set
	}
	return o.env
}

func (o *optional) boolValue() (bool, error) {
	if o.value() == "" {
		return false, nil
	}
	return strconv.ParseBool(o.value())
}

// keyState is the part of a key's metadata its state writes change.
type keyState struct {
	enabled      bool
	state        cmk.KeyState
	deletionDate int64
}

func stateOf(md *cmk.KeyMetadata) keyState {
	return keyState{enabled: md.Enabled, state: md.KeyState, deletionDate: md.DeletionDate}
}

func (s keyState) applyTo(md *cmk.KeyMetadata) {
	md.Enabled, md.KeyState, md.DeletionDate = s.enabled, s.state, s.deletionDate
}

func (s keyState) pendingDeletion() bool { return s.deletionDate != 0 }

// snapshot is a key as it was from a moment on.
type snapshot struct {
	at     time.Time
	exists bool
	state  keyState
	tags   map[string]string
}

// snapshotOf reads a key's current snapshot from the database.
func (t *tenant) snapshotOf(arn string, at time.Time) snapshot {
	key, err := t.db.LoadKey(arn)
	if err != nil || key == nil {
		return snapshot{at: at}
	}
	s := snapshot{at: at, exists: true, state: stateOf(key.GetMetadata()), tags: map[string]string{}}
	tags, _ := t.db.ListTags(arn, maxTagsPerKey+1, "")
	for _, tg := range tags {
		s.tags[tg.TagKey] = tg.TagValue
	}
	return s
}

// recordBaseline keeps a key's state before a write, unless its recent past
// is known already or no switch asks for it.
func (t *tenant) recordBaseline(arn string, horizon time.Duration) {
	if _, ok := t.history[arn]; !ok && horizon > 0 {
		t.history[arn] = []snapshot{t.snapshotOf(arn, time.Time{})}
	}
}

// recordCreated starts the history of a key created at now: absent before.
func (t *tenant) recordCreated(arn string, now time.Time, horizon time.Duration) {
	t.markChanged(arn)
	t.history[arn] = []snapshot{{}}
	t.record(arn, now, horizon)
}

// record adds a key's snapshot after a write and forgets what no switch can
// ask for any more: a key whose last change is older than the horizon is
// settled and has no history. Now and then it settles every key, so that
// the history of keys written once does not grow without end.
func (t *tenant) record(arn string, now time.Time, horizon time.Duration) {
	t.markChanged(arn)
	if horizon == 0 {
		delete(t.history, arn)
		return
	}
	t.history[arn] = append(t.history[arn], t.snapshotOf(arn, now))
	t.settle(arn, now.Add(-horizon))
	if t.records++; t.records%1024 == 0 {
		for other := range t.history {
			t.settle(other, now.Add(-horizon))
		}
	}
}

// settle prunes a key's history up to cutoff.
func (t *tenant) settle(arn string, cutoff time.Time) {
	if h := prune(t.history[arn], cutoff); len(h) > 1 {
		t.history[arn] = h
	} else {
		delete(t.history, arn)
	}
}

// prune keeps the last snapshot taken at or before cutoff and the later ones.
func prune(h []snapshot, cutoff time.Time) []snapshot {
	i := 0
	for i+1 < len(h) && !h[i+1].at.After(cutoff) {
		i++
	}
	return h[i:]
}

// asOf returns a key as it was at a moment, and whether it changed since
// (otherwise the database's current state is the answer).
func (t *tenant) asOf(arn string, at time.Time) (snapshot, bool) {
	h := t.history[arn]
	i := len(h) - 1
	for i >= 0 && h[i].at.After(at) {
		i--
	}
	if i < 0 || i == len(h)-1 {
		return snapshot{}, false
	}
	return h[i], true
}

// stateWriters change a key's state. Served against a stale state their
// effect would be lost, so they act on the current state, but are refused
// as the stale state refuses them.
var stateWriters = map[string]bool{
	"EnableKey": true, "DisableKey": true, "ScheduleKeyDeletion": true, "CancelKeyDeletion": true,
	"ImportKeyMaterial": true, "DeleteImportedKeyMaterial": true,
}

// recordedOps are the writes kept in the keys' history (CreateKey and
// ReplicateKey record their new keys themselves).
var recordedOps = map[string]bool{
	"EnableKey": true, "DisableKey": true, "ScheduleKeyDeletion": true, "CancelKeyDeletion": true,
	"ImportKeyMaterial": true, "DeleteImportedKeyMaterial": true, "TagResource": true, "UntagResource": true,
}

// staleView makes the request see key arn as it was staleAfterWrite ago.
// It returns an answer to give instead of serving the request, or a
// function that restores the key's current state after serving it.
func (c *call) staleView(arn string) (handler.Response, func()) {
	window := time.Duration(c.cfg.StaleAfterWrite)
	if window == 0 || c.op == "DescribeKey" {
		return handler.Response{}, nil
	}
	then, past := c.t.asOf(arn, c.now.Add(-window))
	switch {
	case !past:
		return handler.Response{}, nil
	case !then.exists:
		return notFound("Key '%s' does not exist", arn), nil
	case stateWriters[c.op]:
		return refusedIn(c.op, arn, then.state), nil
	}
	return handler.Response{}, c.t.swapState(arn, then.state)
}

// refusedIn answers what a key in state s answers a state write, if it
// refuses it.
func refusedIn(op, arn string, s keyState) handler.Response {
	switch {
	case op == "CancelKeyDeletion" && !s.pendingDeletion():
		return invalidState("%s is not pending deletion.", arn)
	case op != "CancelKeyDeletion" && s.pendingDeletion():
		return invalidState("%s is pending deletion.", arn)
	}
	return handler.Response{}
}

// swapState stores s as the key's state and returns the function that
// puts the current state back. Only the state fields are swapped, so what
// the request changes otherwise (tags, policy) stays.
func (t *tenant) swapState(arn string, s keyState) func() {
	key, err := t.db.LoadKey(arn)
	if err != nil || key == nil || stateOf(key.GetMetadata()) == s {
		return nil
	}
	current := stateOf(key.GetMetadata())
	s.applyTo(key.GetMetadata())
	if t.db.SaveKey(key) != nil {
		return nil
	}
	return func() {
		if key, err := t.db.LoadKey(arn); err == nil && key != nil {
			current.applyTo(key.GetMetadata())
			_ = t.db.SaveKey(key)
		}
	}
}

// listKeys drops the keys created less than keyListLag ago from
// local-kms's answer. A page may then hold fewer keys than its limit, which
// AWS allows ("it might return fewer").
func (f *Front) listKeys(c *call) handler.Response {
	resp := f.local(c, c.body)
	lag := time.Duration(c.cfg.KeyListLag)
	if !success(resp.Code) || lag == 0 {
		return resp
	}
	var out struct {
		Keys       []map[string]string
		NextMarker string `json:",omitempty"`
		Truncated  bool
	}
	if err := json.Unmarshal([]byte(resp.Body), &out); err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	out.Keys = slices.DeleteFunc(out.Keys, func(k map[string]string) bool {
		then, past := c.t.asOf(k["KeyArn"], c.now.Add(-lag))
		return past && !then.exists
	})
	return jsonResponse(200, out)
}

// listResourceTags answers the tags as they were tagLag ago when they
// changed since.
func (f *Front) listResourceTags(c *call) handler.Response {
	var in struct {
		KeyId  string
		Limit  *int
		Marker string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	lag := time.Duration(c.cfg.TagLag)
	if lag == 0 || in.KeyId == "" {
		return f.local(c, c.body)
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	then, past := c.t.asOf(key.GetArn(), c.now.Add(-lag))
	if !past {
		return f.local(c, c.body)
	}
	return tagPage(then.tags, in.Limit, in.Marker)
}
