//go:build e2e

package e2e

import (
	"sync"
	"testing"
	"time"
)

// TestShardingByNamespace: two operators with disjoint --watch-namespaces
// share one account's quotas through --kms-quota-share 0.5 each and, creating
// at the same time, are never throttled (README, "Sharding").
func TestShardingByNamespace(t *testing.T) {
	const n = 10 // sets per shard: 20 CreateKey and 20 CreateAlias at a quota of 5/s
	shards := []*resEnv{newResEnv(t, "shard-a"), newResEnv(t, "shard-b")}
	for _, e := range shards {
		e.operator("", false, "--kms-quota-share=0.5")
	}
	setKMSConfig(t, `{"quotas":"aws"}`)
	before, start := readKMSStats(t), time.Now()
	var wg sync.WaitGroup
	for _, e := range shards {
		wg.Go(func() {
			for i := range n {
				if err := e.createSet(i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for _, e := range shards {
		e.waitSettled(2 * time.Minute)
	}
	elapsed := time.Since(start)
	d := readKMSStats(t).minus(before)
	setKMSConfig(t, "{}")
	for _, e := range shards {
		e.assertKMS(e.waitSettled(10 * time.Second))
	}

	throttled := 0
	for _, c := range d {
		throttled += c.Throttled
	}
	t.Logf("2 shards x %d sets in %s (floor %s at 5 CreateKey/s); counts: %s",
		n, elapsed.Round(100*time.Millisecond), time.Duration(2*n)*time.Second/5, d)
	if d["CreateKey"].Requests < 2*n {
		t.Errorf("%d CreateKey requests, want >= %d: both shards should have created their keys", d["CreateKey"].Requests, 2*n)
	}
	if throttled != 0 {
		t.Errorf("%d requests throttled, want 0: two operators at share 0.5 stay under the account's quotas together", throttled)
	}
}
