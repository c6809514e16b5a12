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

// store is the state local-kms has no place for, kept in one JSON file that is
// rewritten atomically on every change. It is small: grants and per-key extras.
type store struct {
	path string
	mu   sync.Mutex
	data storeData
}

type storeData struct {
	// Keys holds per-key extras by key ARN.
	Keys map[string]*keyExtras `json:"keys"`
	// Grants are in creation order, which is the order ListGrants answers in.
	Grants []*grant `json:"grants"`
}

type keyExtras struct {
	MultiRegion bool `json:"multiRegion,omitempty"`
	// RotationPeriodInDays is set while automatic rotation is enabled.
	RotationPeriodInDays int        `json:"rotationPeriodInDays,omitempty"`
	Rotations            []rotation `json:"rotations,omitempty"`
}

type rotation struct {
	Date time.Time `json:"date"`
	Type string    `json:"type"`
}

func openStore(path string) (*store, error) {
	s := &store{path: path, data: storeData{Keys: map[string]*keyExtras{}}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &s.data); err != nil {
		return nil, err
	}
	if s.data.Keys == nil {
		s.data.Keys = map[string]*keyExtras{}
	}
	return s, nil
}

// view runs fn with the state locked.
func (s *store) view(fn func(d *storeData)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(&s.data)
}

// update runs fn with the state locked and saves the state if fn reports a
// change.
func (s *store) update(fn func(d *storeData) bool) error {
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
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".front-*.json")
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
