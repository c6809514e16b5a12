package front

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// store is state local-kms has no place for, kept in one JSON file that is
// rewritten atomically on every change. It is small: grants and per-key
// extras of a tenant, or the multi-Region keys of an account.
type store[T any] struct {
	path string
	mu   sync.Mutex
	data T
}

// storeData is a tenant's state.
type storeData struct {
	// Keys holds per-key extras by key ARN.
	Keys map[string]*keyExtras `json:"keys"`
	// Grants are in creation order, which is the order ListGrants answers in.
	Grants []*grant `json:"grants"`
}

type keyExtras struct {
	// RotationPeriodInDays is set while automatic rotation is enabled.
	RotationPeriodInDays int        `json:"rotationPeriodInDays,omitempty"`
	Rotations            []rotation `json:"rotations,omitempty"`
	// PendingWindowInDays is the waiting period of a primary key in
	// PendingReplicaDeletion, which starts when its last replica is gone.
	PendingWindowInDays int `json:"pendingWindowInDays,omitempty"`
	// LastUsage is the key's last cryptographic use.
	LastUsage *keyUsage `json:"lastUsage,omitempty"`
	// Import and Materials are an EXTERNAL key's import parameters and key
	// materials (imports.go).
	Import    *importParams  `json:"import,omitempty"`
	Materials []*keyMaterial `json:"materials,omitempty"`
}

type rotation struct {
	Date time.Time `json:"date"`
	Type string    `json:"type"`
}

// openStore reads the file at path, if any, then lets init fill in what
// it lacks.
func openStore[T any](path string, init func(*T)) (*store[T], error) {
	s := &store[T]{path: path}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(b, &s.data); err != nil {
			return nil, err
		}
	}
	init(&s.data)
	return s, nil
}

func openTenantStore(path string) (*store[storeData], error) {
	return openStore(path, func(d *storeData) {
		if d.Keys == nil {
			d.Keys = map[string]*keyExtras{}
		}
	})
}

// view runs fn with the state locked.
func (s *store[T]) view(fn func(d *T)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.data)
}

// update runs fn with the state locked and saves the state if fn reports a
// change.
func (s *store[T]) update(fn func(d *T) bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !fn(&s.data) {
		return nil
	}
	b, err := json.Marshal(&s.data)
	if err != nil {
		return err
	}
	// Write then rename, so a crash never leaves a half-written file.
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".state-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), s.path)
}

// key returns the extras of a key, creating them.
func (d *storeData) key(arn string) *keyExtras {
	k := d.Keys[arn]
	if k == nil {
		k = &keyExtras{}
		d.Keys[arn] = k
	}
	return k
}
