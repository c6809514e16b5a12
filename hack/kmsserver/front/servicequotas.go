package front

// Service Quotas' ListServiceQuotas for ServiceCode kms: the account's
// applied KMS request quotas, which an operator reads to pace itself
// (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListServiceQuotas.html;
// JSON 1.1, X-Amz-Target ServiceQuotasV20190624.ListServiceQuotas; the SDK
// reaches it with AWS_ENDPOINT_URL_SERVICE_QUOTAS).

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"

	"github.com/nsmithuk/local-kms/src/handler"
)

// kmsQuota is one KMS request quota as Service Quotas lists it.
type kmsQuota struct {
	// name is AWS's quota name.
	name string
	// op is the server's quota it applies: an operation or cryptoQuota; ""
	// for a quota the server does not apply (by key type).
	op string
	// value is AWS's default in a region.
	value func(region string) float64
}

// kmsQuotas are KMS's request quotas, named and with the defaults of the
// AWS KMS Developer Guide's table, "Request quotas for each AWS KMS API
// operation" (https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html).
// The custom key store quota, per key store and not adjustable, is left out.
var kmsQuotas = []kmsQuota{
	{"Cryptographic operations (symmetric) request rate", cryptoQuota, symmetricCryptoDefault},
	{"Cryptographic operations (RSA) request rate", "", fixed(1000)},
	{"Cryptographic operations (ML-DSA) request rate", "", fixed(1000)},
	{"Cryptographic operations (ECC and SM2) request rate", "", fixed(1000)},
	{"CancelKeyDeletion request rate", "CancelKeyDeletion", fixed(5)},
	{"ConnectCustomKeyStore request rate", "ConnectCustomKeyStore", fixed(5)},
	{"CreateAlias request rate", "CreateAlias", fixed(5)},
	{"CreateCustomKeyStore request rate", "CreateCustomKeyStore", fixed(5)},
	{"CreateGrant request rate", "CreateGrant", fixed(50)},
	{"CreateKey request rate", "CreateKey", fixed(5)},
	{"DeleteAlias request rate", "DeleteAlias", fixed(15)},
	{"DeleteCustomKeyStore request rate", "DeleteCustomKeyStore", fixed(5)},
	{"DeleteImportedKeyMaterial request rate", "DeleteImportedKeyMaterial", fixed(15)},
	{"DescribeCustomKeyStores request rate", "DescribeCustomKeyStores", fixed(5)},
	{"DescribeKey request rate", "DescribeKey", fixed(2000)},
	{"DisableKey request rate", "DisableKey", fixed(5)},
	{"DisableKeyRotation request rate", "DisableKeyRotation", fixed(5)},
	{"DisconnectCustomKeyStore request rate", "DisconnectCustomKeyStore", fixed(5)},
	{"EnableKey request rate", "EnableKey", fixed(5)},
	{"EnableKeyRotation request rate", "EnableKeyRotation", fixed(15)},
	{"GenerateDataKeyPair (ECC_NIST_P256) request rate", "", fixed(100)},
	{"GenerateDataKeyPair (ECC_NIST_P384) request rate", "", fixed(100)},
	{"GenerateDataKeyPair (ECC_NIST_P521) request rate", "", fixed(100)},
	{"GenerateDataKeyPair (ECC_SECG_P256K1) request rate", "", fixed(100)},
	{"GenerateDataKeyPair (ECC_NIST_EDWARDS25519) request rate", "", fixed(100)},
	{"GenerateDataKeyPair (RSA_2048) request rate", "", inChina(20, 1)},
	{"GenerateDataKeyPair (RSA_3072) request rate", "", inChina(4, 0.5)},
	{"GenerateDataKeyPair (RSA_4096) request rate", "", inChina(1, 0.1)},
	{"GenerateDataKeyPair (SM2 — China Regions only) request rate", "", fixed(25)},
	{"GetKeyLastUsage request rate", "GetKeyLastUsage", fixed(5)},
	{"GetKeyPolicy request rate", "GetKeyPolicy", fixed(1000)},
	{"GetKeyRotationStatus request rate", "GetKeyRotationStatus", fixed(1000)},
	{"GetParametersForImport request rate", "GetParametersForImport", fixed(1)},
	{"GetPublicKey request rate", "GetPublicKey", fixed(2000)},
	{"ImportKeyMaterial request rate", "ImportKeyMaterial", fixed(15)},
	{"ListAliases request rate", "ListAliases", fixed(500)},
	{"ListGrants request rate", "ListGrants", fixed(100)},
	{"ListKeyPolicies request rate", "ListKeyPolicies", fixed(100)},
	{"ListKeys request rate", "ListKeys", fixed(500)},
	{"ListKeyRotations request rate", "ListKeyRotations", fixed(100)},
	{"ListResourceTags request rate", "ListResourceTags", fixed(2000)},
	{"ListRetirableGrants request rate", "ListRetirableGrants", fixed(100)},
	{"PutKeyPolicy request rate", "PutKeyPolicy", fixed(15)},
	{"ReplicateKey request rate", "ReplicateKey", fixed(5)},
	{"RetireGrant request rate", "RetireGrant", fixed(50)},
	{"RevokeGrant request rate", "RevokeGrant", fixed(50)},
	{"RotateKeyOnDemand request rate", "RotateKeyOnDemand", fixed(5)},
	{"ScheduleKeyDeletion request rate", "ScheduleKeyDeletion", fixed(15)},
	{"TagResource request rate", "TagResource", fixed(10)},
	{"UntagResource request rate", "UntagResource", fixed(5)},
	{"UpdateAlias request rate", "UpdateAlias", fixed(5)},
	{"UpdateCustomKeyStore request rate", "UpdateCustomKeyStore", fixed(5)},
	{"UpdateKeyDescription request rate", "UpdateKeyDescription", fixed(5)},
	{"UpdatePrimaryRegion request rate", "UpdatePrimaryRegion", fixed(5)},
}

func fixed(v float64) func(string) float64 { return func(string) float64 { return v } }

// inChina is a default that is lower in the China Regions.
func inChina(v, china float64) func(string) float64 {
	return func(region string) float64 {
		if partitionOf(region) == "aws-cn" {
			return china
		}
		return v
	}
}

// symmetricCryptoDefault is the shared symmetric quota: 100,000 in three
// Regions, 20,000 in six, else 10,000 (table above).
func symmetricCryptoDefault(region string) float64 {
	switch region {
	case "us-east-1", "us-west-2", "eu-west-1":
		return 100000
	case "us-east-2", "ap-southeast-1", "ap-southeast-2", "ap-northeast-1", "eu-central-1", "eu-west-2":
		return 20000
	}
	return 10000
}

// knownQuotaCodes are the Service Quotas codes of KMS quotas recorded in
// public AWS material: the symmetric one in aws-quota-checker's KMS check
// (https://github.com/brennerm/aws-quota-checker), the RSA one in the KMS
// Developer Guide's ListServiceQuotas example, which also shows the shape of
// an entry (https://docs.aws.amazon.com/kms/latest/developerguide/increase-quota.html).
// The codes of the others could not be found in reachable AWS material; the
// server gives them stable codes of its own form (L- and 8 hex digits),
// derived from the name, so an operator must match quotas by QuotaName.
var knownQuotaCodes = map[string]string{
	"Cryptographic operations (symmetric) request rate": "L-6E3AF000",
	"Cryptographic operations (RSA) request rate":       "L-2AC98190",
}

func (q kmsQuota) code() string {
	if c, ok := knownQuotaCodes[q.name]; ok {
		return c
	}
	sum := sha256.Sum256([]byte(q.name))
	return "L-" + strings.ToUpper(hex.EncodeToString(sum[:4]))
}

// value is the quota applied in a tenant: the one the server enforces (the
// configuration's quota of the operation, or AWS's defaults under
// "quotas":"aws"), else AWS's documented default.
func (q kmsQuota) applied(cfg Config, region string) float64 {
	if q.op != "" {
		if n, ok := cfg.Quota[q.op]; ok && n > 0 {
			return float64(n)
		}
		if n := awsQuotas[q.op]; cfg.Quotas == QuotasAWS && n > 0 {
			return float64(n)
		}
	}
	return q.value(region)
}

// serveQuotas answers a Service Quotas request.
func (f *Front) serveQuotas(c *call, body []byte) handler.Response {
	c.body = body
	if c.op != "ListServiceQuotas" {
		return errorResponse(400, "UnknownOperationException", "operation not supported: "+c.op)
	}
	return f.listServiceQuotas(c)
}

// listServiceQuotas lists the KMS request quotas applied in the tenant. Any
// other service code answers an empty list (the server models no other
// service). An account in serviceQuotasAccessDenied gets
// AccessDeniedException, as a caller without servicequotas:ListServiceQuotas
// does (API reference above, Errors).
func (f *Front) listServiceQuotas(c *call) handler.Response {
	var in struct {
		ServiceCode string
		QuotaCode   string
		MaxResults  *int
		NextToken   string
	}
	if resp, ok := c.decode(&in); !ok {
		return resp
	}
	cfg := f.policy.Load().cfg
	if slices.Contains(cfg.ServiceQuotasAccessDenied, c.t.account) {
		return errorResponse(400, "AccessDeniedException", "You do not have sufficient permission to perform this action.")
	}
	if in.ServiceCode == "" {
		return errorResponse(400, "IllegalArgumentException", "1 validation error detected: Value null at 'serviceCode' failed to satisfy constraint: Member must not be null")
	}
	size := 100
	if in.MaxResults != nil {
		if size = *in.MaxResults; size < 1 || size > 100 {
			return errorResponse(400, "IllegalArgumentException", "MaxResults must be between 1 and 100")
		}
	}
	start := 0
	if in.NextToken != "" {
		b, err := base64.StdEncoding.DecodeString(in.NextToken)
		n, convErr := strconv.Atoi(string(b))
		if err != nil || convErr != nil || n < 0 {
			return errorResponse(400, "InvalidPaginationTokenException", "Invalid pagination token")
		}
		start = n
	}
	var quotas []kmsQuota
	if in.ServiceCode == "kms" {
		quotas = slices.DeleteFunc(slices.Clone(kmsQuotas), func(q kmsQuota) bool { return in.QuotaCode != "" && q.code() != in.QuotaCode })
	}
	start = min(start, len(quotas))
	end := min(start+size, len(quotas))
	page := []map[string]any{}
	for _, q := range quotas[start:end] {
		page = append(page, map[string]any{
			"ServiceCode": "kms",
			"ServiceName": "AWS Key Management Service (AWS KMS)",
			"QuotaArn":    "arn:" + c.t.partition + ":servicequotas:" + c.t.region + ":" + c.t.account + ":kms/" + q.code(),
			"QuotaCode":   q.code(),
			"QuotaName":   q.name,
			"Value":       q.applied(cfg, c.t.region),
			// "Unit": "None", adjustable, not global, as in the Developer
			// Guide's example answer (increase-quota.html above).
			"Unit":        "None",
			"Adjustable":  true,
			"GlobalQuota": false,
		})
	}
	out := map[string]any{"Quotas": page}
	if end < len(quotas) {
		out["NextToken"] = base64.StdEncoding.EncodeToString([]byte(strconv.Itoa(end)))
	}
	return jsonResponse(200, out)
}
