//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
)

// TestCloudTrailIdentity: the KMS server sees the operator's application id
// in the User-Agent of its requests (what CloudTrail records as userAgent),
// and the operator logs each KMS write with the object and AWS's request id
// (CloudTrail's requestID).
func TestCloudTrailIdentity(t *testing.T) {
	explainFailure(t)
	key := newKey(nsMain, "audit")
	create(t, key)
	waitReady(t, key)

	resp, err := http.Get(kmsServerURL("/_requests"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var requests []struct {
		Operation string `json:"operation"`
		UserAgent string `json:"userAgent"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&requests); err != nil {
		t.Fatal(err)
	}
	creates := 0
	for _, r := range requests {
		if r.Operation == "CreateKey" && strings.Contains(r.UserAgent, "app/kms-operator#") {
			creates++
		}
	}
	if creates == 0 {
		t.Errorf("no CreateKey request among the last %d has app/kms-operator# in its User-Agent", len(requests))
	}

	f, err := os.Open(mainOperator.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	logged := false
	for s.Scan() {
		var line struct {
			Msg       string `json:"msg"`
			Operation string `json:"operation"`
			RequestID string `json:"requestID"`
			Namespace string `json:"namespace"`
			Name      string `json:"name"`
		}
		if json.Unmarshal(s.Bytes(), &line) != nil {
			continue
		}
		if line.Msg == "KMS write" && line.Operation == "CreateKey" && line.Namespace == nsMain && line.Name == key.Name {
			logged = true
			if line.RequestID == "" {
				t.Errorf("KMS write logged without a request id: %s", s.Text())
			}
		}
	}
	if !logged {
		t.Errorf("no \"KMS write\" log line for CreateKey of %s/%s", nsMain, key.Name)
	}
}
