package front

// Key last usage: every successful cryptographic operation on a key is
// recorded (operation, time, request id), and GetKeyLastUsage answers the
// last one (https://docs.aws.amazon.com/kms/latest/APIReference/API_GetKeyLastUsage.html).

import (
	"encoding/json"
	"time"

	"github.com/nsmithuk/local-kms/src/handler"
)

// defaultTrackingStart is when AWS began recording last usage: the day
// GetKeyLastUsage was released (aws-sdk-go-v2 service/kms v1.51.0,
// 2026-04-27, "KMS GetKeyLastUsage API provides information on the last
// successful cryptographic operation",
// https://github.com/aws/aws-sdk-go-v2/blob/main/service/kms/CHANGELOG.md).
// The configuration's usageTrackingStart sets it per account.
var defaultTrackingStart = time.Date(2026, 4, 27, 0, 0, 0, 0, time.UTC)

// trackedOps are the operations whose success is a key's use: the
// KeyLastUsageTrackingOperation enum of the API.
var trackedOps = map[string]bool{
	"Decrypt": true, "DeriveSharedSecret": true, "Encrypt": true, "GenerateDataKey": true,
	"GenerateDataKeyPair": true, "GenerateDataKeyPairWithoutPlaintext": true,
	"GenerateDataKeyWithoutPlaintext": true, "GenerateMac": true, "ReEncrypt": true,
	"Sign": true, "Verify": true, "VerifyMac": true, "Encapsulate": true, "Decapsulate": true,
}

// keyUsage is a key's last cryptographic use.
type keyUsage struct {
	Operation string    `json:"operation"`
	Timestamp time.Time `json:"timestamp"`
	RequestID string    `json:"requestId"`
	EventID   string    `json:"eventId"`
}

// trackingStart is when the account's tracking began.
func (c *call) trackingStart() time.Time {
	if t, ok := c.f.policy.Load().cfg.UsageTrackingStart[c.t.account]; ok {
		return t
	}
	return defaultTrackingStart
}

// recordUsage records a successful cryptographic operation on the keys its
// answer names: KeyId, and for ReEncrypt also SourceKeyId ("Usage
// information is recorded for both keys independently"). Uses before
// tracking began are not recorded.
func (c *call) recordUsage(resp handler.Response) {
	if !trackedOps[c.op] || !success(resp.Code) || c.now.Before(c.trackingStart()) {
		return
	}
	var out struct {
		KeyId, SourceKeyId string
	}
	if json.Unmarshal([]byte(resp.Body), &out) != nil {
		return
	}
	use := &keyUsage{Operation: c.op, Timestamp: c.now, RequestID: c.requestID, EventID: newUUID()}
	err := c.t.state.update(func(d *storeData) bool {
		for _, id := range []string{out.KeyId, out.SourceKeyId} {
			if id != "" {
				d.key(c.t.keyARN(id)).LastUsage = use
			}
		}
		return out.KeyId != "" || out.SourceKeyId != ""
	})
	if err != nil {
		c.f.logger.Warnf("recording the use of %s: %v", out.KeyId, err)
	}
}

// getKeyLastUsage answers a key's last use. KeyLastUsage is an empty object
// for a key not used since tracking began; TrackingStartDate is the later of
// the key's creation and the start of tracking (API reference above). While
// tracking has not begun, nothing is recorded and TrackingStartDate lies
// ahead. Alias names are not accepted.
func (f *Front) getKeyLastUsage(c *call) handler.Response {
	var in keyIDInput
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	key, resp := c.t.loadKey(in.KeyId)
	if key == nil {
		return resp
	}
	created := time.Unix(key.GetMetadata().CreationDate, 0)
	usage := map[string]any{}
	c.t.state.view(func(d *storeData) {
		if k := d.Keys[key.GetArn()]; k != nil && k.LastUsage != nil {
			u := k.LastUsage
			usage = map[string]any{"Operation": u.Operation, "Timestamp": u.Timestamp.Unix(),
				"KmsRequestId": u.RequestID, "CloudTrailEventId": u.EventID}
		}
	})
	start := c.trackingStart()
	if created.After(start) {
		start = created
	}
	return jsonResponse(200, map[string]any{
		"KeyId":             key.GetMetadata().KeyId,
		"KeyCreationDate":   created.Unix(),
		"TrackingStartDate": start.Unix(),
		"KeyLastUsage":      usage,
	})
}
