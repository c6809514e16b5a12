package policy

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// kmsDefault is the policy KMS attaches to a key created without one.
const kmsDefault = `{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

// kmsDefaultAsReturned is kmsDefault the way GetKeyPolicy returns it:
// pretty-printed, keys reordered, strings wrapped in one-element arrays.
const kmsDefaultAsReturned = `{
  "Id" : "key-default-1",
  "Statement" : [ {
    "Action" : [ "kms:*" ],
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : [ "arn:aws:iam::111122223333:root" ]
    },
    "Resource" : "*",
    "Sid" : "Enable IAM User Permissions"
  } ],
  "Version" : "2012-10-17"
}`

// stmt wraps statements (a JSON array body or a single object) in a policy.
func stmt(s string) string {
	return `{"Version":"2012-10-17","Statement":` + s + `}`
}

// equalCases are our own equal/unequal pairs; TestCorpora also runs them
// through awspolicyequivalence.
var equalCases = []struct {
	reason string
	a, b   string
	want   bool
}{
	// Equal pairs.
	{
		reason: "IAM stores a bare account id principal as the account's root ARN",
		a:      stmt(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}`),
		b:      stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}`),
		want:   true,
	},
	{
		reason: "a different account is a different principal",
		a:      stmt(`{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}`),
		b:      stmt(`{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}`),
		want:   false,
	},
	{"KMS default policy vs how GetKeyPolicy returns it", kmsDefault, kmsDefaultAsReturned, true},
	{"identical", kmsDefault, kmsDefault, true},
	{"whitespace only",
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		"{ \"Version\" : \"2012-10-17\",\n\t\"Statement\" : [ { \"Effect\" : \"Allow\" , \"Action\" : \"kms:Encrypt\" , \"Resource\" : \"*\" } ] }", true},
	{"top-level and statement key order",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}`,
		`{"Statement":[{"Resource":"*","Action":"kms:Encrypt","Effect":"Allow"}],"Version":"2012-10-17"}`, true},
	{"Statement object vs one-element array",
		stmt(`{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}`),
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`), true},
	{"Action string vs one-element array",
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":["kms:Encrypt"],"Resource":"*"}]`), true},
	{"Resource string vs one-element array",
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":["*"]}]`), true},
	{"Action order",
		stmt(`[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*"}]`), true},
	{"Action case",
		stmt(`[{"Effect":"Allow","Action":"kms:GenerateDataKey*","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":"KMS:generatedatakey*","Resource":"*"}]`), true},
	{"duplicated actions",
		stmt(`[{"Effect":"Allow","Action":["kms:Encrypt","kms:Encrypt","kms:encrypt"],"Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`), true},
	{"NotResource order and duplicates",
		stmt(`[{"Effect":"Deny","Action":"kms:*","NotResource":["b","a","b"]}]`),
		stmt(`[{"Effect":"Deny","Action":"kms:*","NotResource":["a","b"]}]`), true},
	{"statement order",
		stmt(`[{"Sid":"A","Effect":"Allow","Action":"kms:Encrypt","Resource":"*"},{"Sid":"B","Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]`),
		stmt(`[{"Sid":"B","Effect":"Deny","Action":"kms:Decrypt","Resource":"*"},{"Sid":"A","Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`), true},
	{"Principal \"*\" vs {\"AWS\":\"*\"}",
		stmt(`[{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Encrypt","Resource":"*"}]`), true},
	{"Principal \"*\" vs {\"AWS\":[\"*\"]}",
		stmt(`[{"Effect":"Allow","Principal":"*","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"kms:Encrypt","Resource":"*"}]`), true},
	{"Principal AWS list order and duplicates",
		stmt(`[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::1:role/b","arn:aws:iam::1:role/a"],"Service":"logs.amazonaws.com"},"Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Principal":{"Service":["logs.amazonaws.com"],"AWS":["arn:aws:iam::1:role/a","arn:aws:iam::1:role/b","arn:aws:iam::1:role/a"]},"Action":"kms:Encrypt","Resource":"*"}]`), true},
	{"condition value string vs one-element array",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":["s3.us-east-1.amazonaws.com"]}}}]`), true},
	{"condition value order",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":["b","a"]}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":["a","b"]}}}]`), true},
	{"condition bool vs \"true\"",
		stmt(`[{"Effect":"Allow","Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":true}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:CreateGrant","Resource":"*","Condition":{"Bool":{"kms:GrantIsForAWSResource":"true"}}}]`), true},
	{"condition number vs string",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":[3600]}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"NumericLessThan":{"aws:MultiFactorAuthAge":"3600"}}}]`), true},
	{"condition key case",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"KMS:calleraccount":"111122223333"}}}]`), true},
	{"absent Sid vs empty Sid",
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Sid":"","Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`), true},
	{"duplicated statement",
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"},{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`), true},

	// Unequal pairs.
	{"different action",
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]`), false},
	{"extra action",
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]`), false},
	{"Allow vs Deny",
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Deny","Action":"kms:Encrypt","Resource":"*"}]`), false},
	{"extra statement",
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"},{"Effect":"Deny","Action":"kms:Delete*","Resource":"*"}]`), false},
	{"different principal",
		stmt(`[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"kms:*","Resource":"*"}]`), false},
	{"a role's unique id is not its ARN",
		// When a role is deleted, IAM shows its unique id (AROA...) in the
		// stored policy instead of its ARN. Unique ids are never reused, so the
		// key no longer grants the role, nor a re-created role of the same
		// name: real drift. PutKeyPolicy with the ARN repairs it, or fails
		// (invalid principal) while the role does not exist.
		stmt(`[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"kms:Decrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Principal":{"AWS":"AROAEXAMPLEID1234567"},"Action":"kms:Decrypt","Resource":"*"}]`), false},
	{"empty Principal lists vs no Principal",
		// Neither is a valid key policy statement (KMS requires a principal),
		// so neither can come back from GetKeyPolicy; "differs" sends the
		// spec to PutKeyPolicy, whose error the user then sees.
		stmt(`[{"Effect":"Allow","Principal":{"AWS":[],"Service":[]},"Action":"kms:Decrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]`), false},
	{"different principal type",
		stmt(`[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Principal":{"Service":"*"},"Action":"kms:*","Resource":"*"}]`), false},
	{"different condition value",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"444455556666"}}}]`), false},
	{"condition value case is significant",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"Blue"}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalTag/team":"blue"}}}]`), false},
	{"different condition operator",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.amazonaws.com"}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringLike":{"kms:ViaService":"s3.amazonaws.com"}}}]`), false},
	{"condition operator case is significant",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.amazonaws.com"}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"stringequals":{"kms:ViaService":"s3.amazonaws.com"}}}]`), false},
	{"missing condition",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"s3.amazonaws.com"}}}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]`), false},
	{"NotAction vs Action",
		stmt(`[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Deny","NotAction":"kms:Decrypt","Resource":"*"}]`), false},
	{"Resource changed",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:us-east-1:111122223333:key/abc"}]`), false},
	{"Resource case is significant",
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:us-east-1:111122223333:alias/App"}]`),
		stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:us-east-1:111122223333:alias/app"}]`), false},
	{"different Sid",
		stmt(`[{"Sid":"A","Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`),
		stmt(`[{"Sid":"B","Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]`), false},
	{"different Version",
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}`,
		`{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}`, false},
	{"different Id", kmsDefault, strings.Replace(kmsDefault, "key-default-1", "key-consolepolicy-3", 1), false},
}

func TestEqual(t *testing.T) {
	for _, tc := range equalCases {
		t.Run(tc.reason, func(t *testing.T) {
			for _, swap := range []bool{false, true} { // Equal must be symmetric
				a, b := tc.a, tc.b
				if swap {
					a, b = b, a
				}
				got, err := Equal(a, b)
				if err != nil {
					t.Fatalf("Equal: unexpected error: %v", err)
				}
				if got != tc.want {
					ca, _ := canonical(a, newOptions(nil))
					cb, _ := canonical(b, newOptions(nil))
					t.Errorf("Equal(swapped=%v) = %v, want %v; canonical forms (-a +b):\n%s", swap, got, tc.want, cmp.Diff(ca, cb))
				}
			}
		})
	}
}

// rootGrant is a policy granting kms:* to the given AWS principals (a JSON
// string or array).
func rootGrant(principals string) string {
	return stmt(`[{"Effect":"Allow","Principal":{"AWS":` + principals + `},"Action":"kms:*","Resource":"*"}]`)
}

// in is the option list comparing in a partition.
func in(partition string) []Option { return []Option{InPartition(partition)} }

// partitionCases compare with or without InPartition. TestCorpora also runs
// them through awspolicyequivalence.
var partitionCases = []struct {
	reason string
	opts   []Option
	a, b   string
	want   bool
}{
	{"default is aws: bare account id is the aws root ARN", nil,
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws:iam::111122223333:root"`), true},
	{"default is aws: not the aws-cn root ARN (the resync loop in China without InPartition)", nil,
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws-cn:iam::111122223333:root"`), false},
	{"an empty partition keeps the default", in(""),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws:iam::111122223333:root"`), true},
	{"aws", in("aws"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws:iam::111122223333:root"`), true},
	{"aws-cn", in("aws-cn"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws-cn:iam::111122223333:root"`), true},
	{"aws-us-gov", in("aws-us-gov"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws-us-gov:iam::111122223333:root"`), true},
	{"aws-iso", in("aws-iso"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws-iso:iam::111122223333:root"`), true},
	{"aws-iso-b", in("aws-iso-b"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws-iso-b:iam::111122223333:root"`), true},
	{"aws-iso-e", in("aws-iso-e"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws-iso-e:iam::111122223333:root"`), true},
	{"aws-iso-f", in("aws-iso-f"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws-iso-f:iam::111122223333:root"`), true},
	{"aws-eusc", in("aws-eusc"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws-eusc:iam::111122223333:root"`), true},
	{"aws-cn: not the aws root ARN (KMS writes the key's partition)", in("aws-cn"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws:iam::111122223333:root"`), false},
	{"aws-us-gov: another account differs", in("aws-us-gov"),
		rootGrant(`"111122223333"`), rootGrant(`"arn:aws-us-gov:iam::444455556666:root"`), false},
	{"aws-iso-b: ARNs are compared as written", in("aws-iso-b"),
		rootGrant(`"arn:aws-iso-b:iam::111122223333:role/app"`), rootGrant(`["arn:aws-iso-b:iam::111122223333:role/app"]`), true},
	{"aws-eusc: bare ids and root ARNs mixed in a list", in("aws-eusc"),
		rootGrant(`["111122223333","arn:aws-eusc:iam::444455556666:root"]`),
		rootGrant(`["arn:aws-eusc:iam::444455556666:root","arn:aws-eusc:iam::111122223333:root"]`), true},
	{"aws-iso: NotPrincipal too", in("aws-iso"),
		stmt(`[{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"}]`),
		stmt(`[{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws-iso:iam::111122223333:root"]},"Action":"kms:*","Resource":"*"}]`), true},
	{"aws-cn: an account id in a condition is not a principal", in("aws-cn"),
		stmt(`[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111122223333"}}}]`),
		stmt(`[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"arn:aws-cn:iam::111122223333:root"}}}]`), false},
	{"aws-cn: KMS default policy as GetKeyPolicy returns it", in("aws-cn"),
		strings.ReplaceAll(kmsDefault, "arn:aws:iam::111122223333:root", "111122223333"),
		strings.ReplaceAll(kmsDefaultAsReturned, "arn:aws:", "arn:aws-cn:"), true},
}

func TestEqualInPartition(t *testing.T) {
	for _, tc := range partitionCases {
		t.Run(tc.reason, func(t *testing.T) {
			for _, swap := range []bool{false, true} { // Equal must be symmetric
				a, b := tc.a, tc.b
				if swap {
					a, b = b, a
				}
				got, err := Equal(a, b, tc.opts...)
				if err != nil {
					t.Fatalf("Equal: unexpected error: %v", err)
				}
				if got != tc.want {
					o := newOptions(tc.opts)
					ca, _ := canonical(a, o)
					cb, _ := canonical(b, o)
					t.Errorf("Equal(swapped=%v) in partition %q = %v, want %v; canonical forms (-a +b):\n%s",
						swap, o.partition, got, tc.want, cmp.Diff(ca, cb))
				}
			}
		})
	}
}

func TestPartitionOf(t *testing.T) {
	cases := []struct {
		reason string
		arn    string
		want   string
	}{
		{"key ARN in aws", "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws"},
		{"key ARN in aws-cn", "arn:aws-cn:kms:cn-north-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws-cn"},
		{"key ARN in aws-us-gov", "arn:aws-us-gov:kms:us-gov-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws-us-gov"},
		{"key ARN in aws-iso", "arn:aws-iso:kms:us-iso-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws-iso"},
		{"key ARN in aws-iso-b", "arn:aws-iso-b:kms:us-isob-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws-iso-b"},
		{"key ARN in aws-iso-e", "arn:aws-iso-e:kms:eu-isoe-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws-iso-e"},
		{"key ARN in aws-iso-f", "arn:aws-iso-f:kms:us-isof-south-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws-iso-f"},
		{"key ARN in aws-eusc", "arn:aws-eusc:kms:eusc-de-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab", "aws-eusc"},
		{"multi-Region key ARN", "arn:aws-cn:kms:cn-northwest-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab", "aws-cn"},
		{"alias ARN", "arn:aws-us-gov:kms:us-gov-east-1:111122223333:alias/app", "aws-us-gov"},
		{"IAM ARN: no region", "arn:aws-cn:iam::111122223333:root", "aws-cn"},
		{"resource with colons", "arn:aws-eusc:logs:eusc-de-east-1:111122223333:log-group:app:*", "aws-eusc"},
		{"unknown partition: taken as written", "arn:aws-future:kms:xx-east-1:111122223333:key/k", "aws-future"},
		{"key id", "1234abcd-12ab-34cd-56ef-1234567890ab", "aws"},
		{"alias name", "alias/app", "aws"},
		{"account id", "111122223333", "aws"},
		{"empty", "", "aws"},
		{"too few fields", "arn:aws-cn:kms:cn-north-1", "aws"},
		{"empty partition", "arn::kms:us-east-1:111122223333:key/k", "aws"},
		{"not arn:", "urn:aws-cn:kms:cn-north-1:111122223333:key/k", "aws"},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, PartitionOf(tc.arn)); diff != "" {
				t.Errorf("PartitionOf(%q) (-want +got):\n%s", tc.arn, diff)
			}
		})
	}
}

// equalErrorCases are pairs Equal must refuse; TestCorpora also runs them
// through awspolicyequivalence.
var equalErrorCases = []struct {
	reason  string
	a, b    string
	wantErr string
}{
	{"empty", "", kmsDefault, "policy is empty"},
	{"whitespace only", kmsDefault, " \n", "policy is empty"},
	{"truncated JSON", `{"Version":"2012-10-17"`, kmsDefault, "policy is not valid JSON: "},
	{"syntax error", kmsDefault, `{"Version" "2012-10-17"}`, "policy is not valid JSON: "},
	{"trailing data", `{} {}`, kmsDefault, "policy is not valid JSON: unexpected data after the top-level object"},
	{"array", `[]`, kmsDefault, "policy is not a JSON object, got an array"},
	{"string", kmsDefault, `"policy"`, "policy is not a JSON object, got a string"},
	{"null", `null`, kmsDefault, "policy is not a JSON object, got null"},
}

func TestEqualErrors(t *testing.T) {
	for _, tc := range equalErrorCases {
		t.Run(tc.reason, func(t *testing.T) {
			got, err := Equal(tc.a, tc.b)
			if err == nil {
				t.Fatalf("Equal = %v, want error containing %q", got, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("error = %q, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		reason  string
		policy  string
		wantErr string // "" means valid
	}{
		{"KMS default policy", kmsDefault, ""},
		{"KMS default policy as returned", kmsDefaultAsReturned, ""},
		{"single statement object", stmt(`{"Effect":"Deny","Action":"kms:*","Resource":"*"}`), ""},
		{"not JSON", `{`, "policy is not valid JSON"},
		{"not an object", `[{"Effect":"Allow"}]`, "policy is not a JSON object, got an array"},
		{"empty", ``, "policy is empty"},
		{"no Statement", `{"Version":"2012-10-17"}`, `policy has no "Statement"`},
		{"Statement is a string", stmt(`"allow all"`), `policy "Statement" must be an object or an array of objects, got a string`},
		{"Statement is empty", stmt(`[]`), `policy "Statement" is an empty array`},
		{"statement is not an object", stmt(`[{"Effect":"Allow"},"x"]`), `policy Statement[1] must be an object, got a string`},
		{"missing Effect", stmt(`[{"Action":"kms:*","Resource":"*"}]`), `policy Statement[0] has no "Effect"`},
		{"lowercase Effect", stmt(`[{"Effect":"Allow"},{"Effect":"allow"}]`), `policy Statement[1] "Effect" must be "Allow" or "Deny", got "allow"`},
		{"non-string Effect", stmt(`{"Effect":true}`), `policy Statement[0] "Effect" must be "Allow" or "Deny", got true`},
	}
	for _, tc := range cases {
		t.Run(tc.reason, func(t *testing.T) {
			err := Validate(tc.policy)
			var got string
			if err != nil {
				got = err.Error()
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: unexpected error: %v", err)
				}
				return
			}
			if !strings.HasPrefix(got, tc.wantErr) {
				t.Errorf("Validate error = %q, want prefix %q", got, tc.wantErr)
			}
		})
	}
}

// TestCanonical pins the canonical form of the KMS default policy so that a
// change in normalization is visible in review.
func TestCanonical(t *testing.T) {
	want := `{"Id":"key-default-1","Statement":[{"Action":["kms:*"],"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root"]},"Resource":["*"],"Sid":"Enable IAM User Permissions"}],"Version":"2012-10-17"}`
	for _, p := range []string{kmsDefault, kmsDefaultAsReturned} {
		got, err := canonical(p, newOptions(nil))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("canonical form mismatch (-want +got):\n%s", diff)
		}
	}
}

// FuzzEqual checks the properties every equality must have: a valid policy
// equals itself, Equal is symmetric, and canonicalization is idempotent.
func FuzzEqual(f *testing.F) {
	f.Add(kmsDefault, kmsDefaultAsReturned)
	f.Add(stmt(`{"Effect":"Allow","Principal":"*","Action":["kms:Encrypt","KMS:encrypt"],"Resource":"*"}`),
		stmt(`[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"kms:encrypt","Resource":["*"]}]`))
	f.Add(stmt(`[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"aws:MultiFactorAuthAge":[1,"2",1.50]}}}]`),
		stmt(`[{"Sid":"","Effect":"Deny","NotAction":[],"NotPrincipal":{"Federated":[]},"Other":[[1],{"x":[null]}]}]`))
	f.Add(`{}`, `{"Statement":"x","Version":[["a"]]}`)
	// Found by fuzzing: wrapped values must normalize the same way twice.
	f.Add(`{"Statement":[{"Principal":["*"]}]}`, `{"Statement":[[{"Condition":[{"StringEquals":[{"K":["v"]}]}]}]]}`)
	// Found by fuzzing: an empty condition value list must stay empty.
	f.Add(`{"Statement":[{"Condition":{"StringEquals":{"K":[]}}}]}`, `{"Statement":[{"Condition":{"StringEquals":{"K":null}}}]}`)
	f.Add(`not json`, `[1,2]`)
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, p := range []string{a, b} {
			eq, err := Equal(p, p)
			if err != nil {
				continue // invalid input: nothing more to check
			}
			if !eq {
				t.Errorf("Equal(p, p) = false for %q", p)
			}
			c, _ := canonical(p, newOptions(nil))
			cc, err := canonical(c, newOptions(nil))
			if err != nil {
				t.Fatalf("canonical form %q does not parse: %v", c, err)
			}
			if diff := cmp.Diff(c, cc); diff != "" {
				t.Errorf("canonicalization not idempotent for %q (-once +twice):\n%s", p, diff)
			}
		}
		ab, errAB := Equal(a, b)
		ba, errBA := Equal(b, a)
		if (errAB == nil) != (errBA == nil) || ab != ba {
			t.Errorf("Equal not symmetric: (a,b) = %v, %v; (b,a) = %v, %v", ab, errAB, ba, errBA)
		}
	})
}
