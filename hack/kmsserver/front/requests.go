package front

// GET /_requests: the last requests served, for tests and debugging. Bodies
// are never kept: they can hold key material, plaintext or grant tokens.

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// DefaultRequestsKept is how many requests GET /_requests can show by
// default.
const DefaultRequestsKept = 1000

type requestEntry struct {
	Time      time.Time `json:"time"`
	Operation string    `json:"operation"`
	Account   string    `json:"account"`
	Region    string    `json:"region"`
	AccessKey string    `json:"accessKeyId,omitempty"`
	Principal string    `json:"principal,omitempty"`
	// Status is the HTTP status, 0 for a connection reset without answer.
	Status    int    `json:"status"`
	ErrorCode string `json:"errorCode,omitempty"`
	UserAgent string `json:"userAgent,omitempty"`
}

// requestLog is a ring of the last requests.
type requestLog struct {
	mu      sync.Mutex
	entries []requestEntry
	next    int // where the next entry goes
	full    bool
}

func newRequestLog(size int) *requestLog {
	if size <= 0 {
		size = DefaultRequestsKept
	}
	return &requestLog{entries: make([]requestEntry, size)}
}

func (l *requestLog) add(e requestEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries[l.next] = e
	l.next = (l.next + 1) % len(l.entries)
	l.full = l.full || l.next == 0
}

// last returns up to n entries, oldest first.
func (l *requestLog) last(n int) []requestEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	count := l.next
	if l.full {
		count = len(l.entries)
	}
	n = min(n, count)
	out := make([]requestEntry, 0, n)
	for i := range n {
		out = append(out, l.entries[(l.next-n+i+len(l.entries))%len(l.entries)])
	}
	return out
}

// serveRequests answers GET /_requests?last=N with the last N requests
// (all kept by default), oldest first.
func (f *Front) serveRequests(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	n := len(f.requests.entries)
	if s := r.URL.Query().Get("last"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"message": "last must be a number >= 0"})
			return
		}
		n = v
	}
	writeJSON(w, http.StatusOK, f.requests.last(n))
}
