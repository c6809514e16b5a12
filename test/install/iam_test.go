package install

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// iamStatement is the part of an IAM policy statement the tests read.
type iamStatement struct {
	Sid       string
	Effect    string
	Action    any
	Condition map[string]map[string]any
}

func readPolicy(t *testing.T, file string) []iamStatement {
	t.Helper()
	var doc struct{ Statement []iamStatement }
	if err := json.Unmarshal(readFile(t, "config", "iam", file), &doc); err != nil {
		t.Fatalf("config/iam/%s: %v", file, err)
	}
	return doc.Statement
}

func actions(s iamStatement) []string {
	switch a := s.Action.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

// TestIAMPolicy: config/iam/policy.json allows every call the operator makes
// on keys of its own cluster, scopes every write to keys tagged with the
// cluster's name (so a compromised operator cannot touch the keys of other
// clusters sharing the account), and denies the policy lockout bypass.
func TestIAMPolicy(t *testing.T) {
	statements := readPolicy(t, "policy.json")
	calls := []string{
		"kms:CreateKey", "kms:DescribeKey", "kms:ListResourceTags", "tag:GetResources", "kms:GetKeyPolicy",
		"kms:PutKeyPolicy", "kms:UpdateKeyDescription", "kms:EnableKey", "kms:DisableKey", "kms:GetKeyRotationStatus",
		"kms:GetKeyLastUsage", "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:RotateKeyOnDemand", "kms:ListKeyRotations",
		"kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
		"kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias",
		"kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant", "kms:RetireGrant", "servicequotas:ListServiceQuotas",
		"kms:ReplicateKey", "kms:UpdatePrimaryRegion", "kms:GetParametersForImport", "kms:ImportKeyMaterial", "kms:DeleteImportedKeyMaterial",
	}
	allowed := map[string]bool{}
	for _, s := range statements {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range actions(s) {
			allowed[a] = true
		}
		writes := slices.ContainsFunc(actions(s), func(a string) bool {
			return !strings.HasPrefix(a, "kms:Describe") && !strings.HasPrefix(a, "kms:List") && !strings.HasPrefix(a, "kms:Get") &&
				!strings.HasPrefix(a, "tag:") && !strings.HasPrefix(a, "servicequotas:")
		})
		onAliasesOnly := s.Sid == "Aliases"
		if writes && !onAliasesOnly && !mentionsClusterTag(s) {
			t.Errorf("statement %s allows writes %v without a condition on the kms.kmsoperator.io/cluster tag", s.Sid, actions(s))
		}
	}
	for _, c := range calls {
		if !allowed[c] {
			t.Errorf("config/iam/policy.json does not allow %s, which the operator calls", c)
		}
	}
	denied := false
	for _, s := range statements {
		if s.Effect == "Deny" && slices.Contains(actions(s), "kms:PutKeyPolicy") && s.Condition["Bool"]["kms:BypassPolicyLockoutSafetyCheck"] == "true" {
			denied = true
		}
	}
	if !denied {
		t.Error("config/iam/policy.json does not deny kms:BypassPolicyLockoutSafetyCheck")
	}
	for _, s := range readPolicy(t, "unowned-keys.json") {
		if s.Condition["Null"]["aws:ResourceTag/kms.kmsoperator.io/cluster"] != "true" {
			t.Errorf("unowned-keys.json statement %s is not limited to keys without a cluster tag", s.Sid)
		}
	}
}

func mentionsClusterTag(s iamStatement) bool {
	for _, kv := range s.Condition {
		for k := range kv {
			if strings.HasSuffix(k, "/kms.kmsoperator.io/cluster") {
				return true
			}
		}
	}
	return false
}
