package controllers

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// keyMemory is what the Key reconciler remembers between reconciles of one
// object in this process. A restart forgets it, which costs at most a
// recovery wait or a read: never a duplicate key. Entries are dropped once
// they no longer matter, so it holds only objects in the middle of something.
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
	// create-started annotation was last written. True when this process
	// wrote the annotation, or when KMS refused the last CreateKey with an
	// error answer (throttled, invalid: no key was made); false after a
	// CreateKey whose answer may have been lost.
	noKeyYet bool
	// annotation is the create-started value this process last wrote, and
	// attempted says a CreateKey followed it: the annotation must be written
	// again before the next attempt (key_create.go).
	annotation string
	attempted  bool
	// lastWrite is this process's last change of the key's state (created,
	// enabled, disabled, deletion scheduled or cancelled): KMS may answer
	// from before it for a while (consistency.go).
	lastWrite time.Time
	// lastUsageRead is when this process last read the key's last usage
	// (key_last_usage.go): it is read at most once per sync period.
	lastUsageRead time.Time
	// created is the key this process created, as the CreateKey input made
	// it, for generation createdGen: the reconciles that finish its creation
	// (key_controller.go) need not read back what they just wrote.
	created    *observed
	createdGen int64
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

func (m *keyMemory) lastWrite(uid types.UID) time.Time { return m.read(uid).lastWrite }

func (m *keyMemory) setCreated(uid types.UID, id string) {
	m.with(uid, func(n *keyNotes) { n.createdID, n.noKeyYet, n.lastWrite = id, false, time.Now() })
}

func (m *keyMemory) setNoKeyYet(uid types.UID, none bool) {
	m.with(uid, func(n *keyNotes) { n.noKeyYet = none })
}

// wrote records a change of the key's state made now.
func (m *keyMemory) wrote(uid types.UID) {
	m.with(uid, func(n *keyNotes) { n.lastWrite = time.Now() })
}

// lastUsageDue reports whether the key's last usage may be read again: it
// was not read in this process within 90% of period. Resyncs come with 10%
// jitter, so each reads it once, and reconciles in between do not.
func (m *keyMemory) lastUsageDue(uid types.UID, period time.Duration) bool {
	return time.Since(m.read(uid).lastUsageRead) >= period*9/10
}

// lastUsageReadNow records a read of the key's last usage made now.
func (m *keyMemory) lastUsageReadNow(uid types.UID) {
	m.with(uid, func(n *keyNotes) { n.lastUsageRead = time.Now() })
}

// annotated records the create-started value this process wrote.
func (m *keyMemory) annotated(uid types.UID, value string) {
	m.with(uid, func(n *keyNotes) { n.annotation, n.attempted = value, false })
}

// attempting records that a CreateKey is about to be sent.
func (m *keyMemory) attempting(uid types.UID) {
	m.with(uid, func(n *keyNotes) { n.attempted = true })
}

// createRecorded forgets what only matters until the informer cache shows
// the key id in status: call it once a reconcile reads the id from there.
func (m *keyMemory) createRecorded(uid types.UID) {
	m.edit(uid, func(n *keyNotes) {
		n.createdID, n.noKeyYet, n.annotation, n.attempted = "", false, "", false
		n.created, n.createdGen = nil, 0
	})
}

// keepCreated remembers a key created for generation gen of the object.
func (m *keyMemory) keepCreated(uid types.UID, gen int64, obs *observed) {
	m.with(uid, func(n *keyNotes) { n.created, n.createdGen = obs, gen })
}

// creationFinished forgets the created key's aspects once a reconcile has
// applied the rest of the spec: from then on the key is read like any other.
func (m *keyMemory) creationFinished(uid types.UID) {
	m.edit(uid, func(n *keyNotes) { n.created, n.createdGen = nil, 0 })
}

// createdFor returns the key created for generation gen, nil if none is
// remembered (or the spec changed since).
func (m *keyMemory) createdFor(uid types.UID, gen int64) *observed {
	n := m.read(uid)
	if n.created == nil || n.createdGen != gen {
		return nil
	}
	obs := *n.created
	return &obs
}

// settle forgets a last write older than window: KMS shows it by now.
func (m *keyMemory) settle(uid types.UID, window time.Duration) {
	m.edit(uid, func(n *keyNotes) {
		if time.Since(n.lastWrite) >= window {
			n.lastWrite = time.Time{}
		}
	})
}

// edit runs fn on uid's notes if there are any, and drops notes left empty.
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
