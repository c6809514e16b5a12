package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
)

type opCount struct {
	Requests  int `json:"requests"`
	Throttled int `json:"throttled"`
}

func (b *bench) counts() (map[string]opCount, error) {
	resp, err := http.Get(b.kmsURL + "/_counts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]opCount{}
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

// kmsConfig sets the KMS server's quotas and faults (nil clears them),
// keeping its realistic eventual consistency on.
func (b *bench) kmsConfig(cfg map[string]any) error {
	if cfg == nil {
		cfg = map[string]any{}
	}
	if _, ok := cfg["consistency"]; !ok {
		cfg["consistency"] = "realistic"
	}
	body, _ := json.Marshal(cfg)
	req, err := http.NewRequest(http.MethodPut, b.kmsURL+"/_config", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT /_config: %s", resp.Status)
	}
	return nil
}

// callsSince is the KMS calls and throttles since before, by operation.
func (b *bench) callsSince(before map[string]opCount) (map[string]int, int, error) {
	after, err := b.counts()
	if err != nil {
		return nil, 0, err
	}
	calls, throttled := map[string]int{}, 0
	for op, c := range after {
		if d := c.Requests - before[op].Requests; d > 0 {
			calls[op] = d
		}
		throttled += c.Throttled - before[op].Throttled
	}
	return calls, throttled, nil
}

// reads sums the calls of read operations.
func reads(calls map[string]int) int {
	n := 0
	for op, c := range calls {
		switch op {
		case "DescribeKey", "ListResourceTags", "GetKeyPolicy", "GetKeyRotationStatus", "ListGrants", "ListKeys", "GetResources", "ListKeyRotations":
			n += c
		}
	}
	return n
}
