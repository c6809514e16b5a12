package front

import (
	"net/http"
	"strings"
	"sync"
)

// counter counts requests, non-2xx answers (and connections reset),
// throttled requests (over quota or injected) and requests given another
// fault (including latency) per tenant and operation.
type counter struct {
	mu sync.Mutex
	m  map[string]map[string]*opCount // tenant id, operation
}

type opCount struct {
	Requests  int `json:"requests"`
	Errors    int `json:"errors"`
	Throttled int `json:"throttled"`
	Faulted   int `json:"faulted"`
}

func (c *counter) add(tenant, op string, code int, act action) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.m[tenant]
	if ops == nil {
		ops = map[string]*opCount{}
		c.m[tenant] = ops
	}
	n := ops[op]
	if n == nil {
		n = &opCount{}
		ops[op] = n
	}
	n.Requests++
	if !success(code) {
		n.Errors++
	}
	if act.kind == FaultThrottle {
		n.Throttled++
	} else if act.kind != "" || act.delay > 0 {
		n.Faulted++
	}
}

// sum adds up the counts of the tenants of account and region ("" for
// any).
func (c *counter) sum(account, region string) map[string]*opCount {
	c.mu.Lock()
	defer c.mu.Unlock()
	total := map[string]*opCount{}
	for id, ops := range c.m {
		a, r, _ := strings.Cut(id, "/")
		if (account != "" && a != account) || (region != "" && r != region) {
			continue
		}
		for op, n := range ops {
			t := total[op]
			if t == nil {
				t = &opCount{}
				total[op] = t
			}
			t.Requests += n.Requests
			t.Errors += n.Errors
			t.Throttled += n.Throttled
			t.Faulted += n.Faulted
		}
	}
	return total
}

// serveCounts answers GET /_counts with the counts summed over the tenants,
// or over those of ?account=A&region=R, and DELETE /_counts by resetting
// them all.
func (f *Front) serveCounts(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		writeJSON(w, http.StatusOK, f.counts.sum(q.Get("account"), q.Get("region")))
	case http.MethodDelete:
		f.counts.mu.Lock()
		f.counts.m = map[string]map[string]*opCount{}
		f.counts.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, DELETE")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}
