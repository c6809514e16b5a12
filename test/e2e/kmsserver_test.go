//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// The suite's KMS server runs with realistic eventual consistency (make
// local-up starts it with --realistic): lists lag behind writes, new
// principals are unknown for a moment, and so on. Every test meets it.

func kmsServerURL(path string) string {
	return strings.TrimSuffix(os.Getenv("AWS_ENDPOINT_URL_KMS"), "/") + path
}

// putKMSConfig replaces the KMS server's configuration (PUT /_config). The
// realistic consistency preset stays on unless cfg sets "consistency"
// itself: "{}" clears quotas and faults only.
func putKMSConfig(cfg string) error {
	var m map[string]any
	if err := json.Unmarshal([]byte(cfg), &m); err != nil {
		return fmt.Errorf("KMS server config %s: %w", cfg, err)
	}
	if _, ok := m["consistency"]; !ok {
		m["consistency"] = "realistic"
	}
	body, _ := json.Marshal(m)
	req, err := http.NewRequest(http.MethodPut, kmsServerURL("/_config"), strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("PUT /_config %s: %s: %s", body, resp.Status, answer)
	}
	return nil
}

func setKMSConfig(t *testing.T, cfg string) {
	t.Helper()
	if err := putKMSConfig(cfg); err != nil {
		t.Fatal(err)
	}
}

// listLag is the longest a list of the KMS server (ListKeys, ListGrants,
// ListResourceTags, tag:GetResources) lags behind a write, from its
// configuration.
func listLag(t *testing.T) time.Duration {
	t.Helper()
	var lag time.Duration
	for _, k := range []string{"keyListLag", "tagLag", "taggingAPILag", "grantListLag"} {
		lag = max(lag, consistencySetting(t, k))
	}
	return lag
}

// consistencySetting is one duration of the KMS server's consistency
// configuration (GET /_config), 0 when off.
func consistencySetting(t *testing.T, name string) time.Duration {
	t.Helper()
	if realAWS {
		// Real KMS documents its lags as "usually a few seconds, sometimes
		// minutes"; a minute covers what the tests wait for.
		return time.Minute
	}
	resp, err := http.Get(kmsServerURL("/_config"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var cfg struct {
		Consistency map[string]any `json:"consistency"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		t.Fatal(err)
	}
	s, _ := cfg.Consistency[name].(string)
	d, _ := time.ParseDuration(s)
	return d
}

// staleAfterWrite is how long the KMS server answers calls on a key from
// before a write to it, from its configuration.
func staleAfterWrite(t *testing.T) time.Duration {
	t.Helper()
	return consistencySetting(t, "staleAfterWrite")
}

// awaitWrite waits until calls on a key the test just wrote see the write.
func awaitWrite(t *testing.T) {
	t.Helper()
	time.Sleep(staleAfterWrite(t) + 200*time.Millisecond)
}

// awaitLists waits until the server's lists show every write made so far.
func awaitLists(t *testing.T) {
	t.Helper()
	time.Sleep(listLag(t) + 500*time.Millisecond)
}

// ownedKeys is the ids of the KMS keys tagged with an object's UID, as
// tag:GetResources lists them (see awaitLists).
func ownedKeys(t *testing.T, uid types.UID) []string {
	t.Helper()
	found, err := kms.FindKeys(context.Background(), map[string]string{kmsv1alpha1.TagOwnerUID: string(uid)})
	if err != nil {
		t.Fatalf("finding the keys of %s: %v", uid, err)
	}
	var ids []string
	for _, f := range found {
		ids = append(ids, f.ID)
	}
	return ids
}

// runTag tags every KMS key a test makes itself, so cleanupAWS finds it.
const runTag = "kms-operator-e2e-run"

// cleanupAWS schedules the deletion, with the shortest window (7 days), of
// every key of the run in a real AWS account: the operators' (by the run's
// cluster name) and the tests' own (by runTag), even after failed tests.
func cleanupAWS(ctx context.Context) {
	for _, region := range []string{"", "eu-west-1", "eu-west-2"} {
		api, err := kmsProvider.For("", region)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e cleanup:", err)
			continue
		}
		for _, tags := range []map[string]string{{kmsv1alpha1.TagOwnerCluster: clusterName}, {runTag: runID}} {
			found, err := api.FindKeys(ctx, tags)
			if err != nil {
				fmt.Fprintln(os.Stderr, "e2e cleanup:", err)
				continue
			}
			for _, k := range found {
				if d, err := api.DescribeKey(ctx, k.ID); err == nil && !kmsclient.PendingDeletion(d.State) {
					if _, err := api.ScheduleDeletion(ctx, k.ID, 7); err != nil {
						fmt.Fprintln(os.Stderr, "e2e cleanup:", k.ARN, err)
					}
				}
			}
		}
	}
}
