package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// keyMemory is what the Key reconciler remembers between reconciles of one
// object in this process. A restart forgets it, which costs at most a
// recovery scan or a shorter malformed-policy grace: never a duplicate key.
type keyMemory struct {
	mu    sync.Mutex
	notes map[types.UID]*keyNotes
}

type keyNotes struct {
	// createdID is a key this process created, for the moment between the
	// status write and the informer cache showing it: a reconcile that reads
	// the stale object must not create the key again.
	createdID string
	// noKeyYet: no CreateKey can have made a key for this object since its
	// create-started annotation was written. True when this process wrote the
	// annotation, or when KMS refused the last CreateKey with an error answer
	// (throttled, invalid: no key was made); false after a CreateKey whose
	// answer may have been lost. It lets a retry skip the recovery scan of the
	// account's keys.
	noKeyYet bool
	// malformed is when KMS first called this generation's policy malformed
	// (see malformedPolicyGrace).
	malformedGeneration int64
	malformedSince      time.Time
}

func newKeyMemory() *keyMemory { return &keyMemory{notes: map[types.UID]*keyNotes{}} }

// with runs fn on uid's notes, creating them.
func (m *keyMemory) with(uid types.UID, fn func(n *keyNotes)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.notes[uid]
	if n == nil {
		n = &keyNotes{}
		m.notes[uid] = n
	}
	fn(n)
}

// read returns a copy of uid's notes (zero when none).
func (m *keyMemory) read(uid types.UID) keyNotes {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n := m.notes[uid]; n != nil {
		return *n
	}
	return keyNotes{}
}

func (m *keyMemory) createdID(uid types.UID) string { return m.read(uid).createdID }

func (m *keyMemory) noKeyYet(uid types.UID) bool { return m.read(uid).noKeyYet }

func (m *keyMemory) setCreated(uid types.UID, id string) {
	m.with(uid, func(n *keyNotes) { n.createdID, n.noKeyYet = id, false })
}

func (m *keyMemory) setNoKeyYet(uid types.UID, none bool) {
	m.with(uid, func(n *keyNotes) { n.noKeyYet = none })
}

// malformedSince returns when KMS first called generation's policy
// malformed, starting the clock now on the first call for that generation.
func (m *keyMemory) malformedSince(uid types.UID, generation int64) time.Time {
	var since time.Time
	m.with(uid, func(n *keyNotes) {
		if n.malformedSince.IsZero() || n.malformedGeneration != generation {
			n.malformedGeneration, n.malformedSince = generation, time.Now()
		}
		since = n.malformedSince
	})
	return since
}

// createRecorded forgets what only matters until the informer cache shows
// the key id in status: call it once a reconcile reads the id from there.
func (m *keyMemory) createRecorded(uid types.UID) {
	m.edit(uid, func(n *keyNotes) { n.createdID, n.noKeyYet = "", false })
}

// policyAccepted ends the malformed-policy grace.
func (m *keyMemory) policyAccepted(uid types.UID) {
	m.edit(uid, func(n *keyNotes) { n.malformedGeneration, n.malformedSince = 0, time.Time{} })
}

// edit runs fn on uid's notes if there are any, and drops notes left empty,
// so the memory holds only objects in the middle of something.
func (m *keyMemory) edit(uid types.UID, fn func(n *keyNotes)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.notes[uid]
	if n == nil {
		return
	}
	fn(n)
	if *n == (keyNotes{}) {
		delete(m.notes, uid)
	}
}

// forget drops everything about uid: its object is gone.
func (m *keyMemory) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.notes, uid)
}
