package front

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/google/go-cmp/cmp"
)

const otherAccount = "222233334444"

// tenantsServer serves the test account in two regions and, for access key
// AKIDOTHER, a second account.
func tenantsServer(t *testing.T, opts Options) (*server, map[string]*kms.Client) {
	opts.Config.AccessKeys = map[string]string{"AKIDOTHER": otherAccount}
	s := startWith(t, opts, nil)
	return s, map[string]*kms.Client{
		"east":  s.kmsAs("us-east-1", "local"),
		"west":  s.kmsAs("us-west-2", "local"),
		"other": s.kmsAs("us-east-1", "AKIDOTHER"),
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	ctx := context.Background()
	s, clients := tenantsServer(t, Options{})
	wantPrefix := map[string]string{
		"east":  "arn:aws:kms:us-east-1:111122223333:key/",
		"west":  "arn:aws:kms:us-west-2:111122223333:key/",
		"other": "arn:aws:kms:us-east-1:222233334444:key/",
	}
	keys := map[string]types.KeyMetadata{}
	for name, c := range clients {
		md := createKey(t, c, nil)
		if !strings.HasPrefix(*md.Arn, wantPrefix[name]) || *md.AWSAccountId != strings.Split(wantPrefix[name], ":")[4] {
			t.Errorf("%s: key %s of account %s, want %s...", name, *md.Arn, *md.AWSAccountId, wantPrefix[name])
		}
		// The same alias name in every tenant.
		must(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: md.KeyId}))(t)
		keys[name] = md
	}
	for name, c := range clients {
		t.Run(name, func(t *testing.T) {
			var listed []string
			for _, k := range must(c.ListKeys(ctx, &kms.ListKeysInput{}))(t).Keys {
				listed = append(listed, *k.KeyArn)
			}
			if diff := cmp.Diff([]string{*keys[name].Arn}, listed); diff != "" {
				t.Errorf("ListKeys (-want +got):\n%s", diff)
			}
			if got := describe(t, c, "alias/app"); *got.KeyId != *keys[name].KeyId {
				t.Errorf("alias/app is key %s, want %s", *got.KeyId, *keys[name].KeyId)
			}
			for other, md := range keys {
				if other == name {
					continue
				}
				if _, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: md.KeyId}); !isErr[*types.NotFoundException](err) {
					t.Errorf("DescribeKey of %s's key id: %v, want NotFoundException", other, err)
				}
			}
		})
	}

	t.Run("unsigned requests are the default tenant's", func(t *testing.T) {
		_, body := s.post(t, "ListKeys", "{}")
		var out kms.ListKeysOutput
		if err := json.Unmarshal([]byte(body), &out); err != nil || len(out.Keys) != 1 || *out.Keys[0].KeyArn != *keys["east"].Arn {
			t.Errorf("ListKeys = %s, %v; want the us-east-1 key of the default account", body, err)
		}
	})
	t.Run("a malformed credential is refused", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.http.URL+"/", strings.NewReader("{}"))
		req.Header.Set("X-Amz-Target", "TrentService.ListKeys")
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AK/20261130/../kms/aws4_request")
		resp := must(http.DefaultClient.Do(req))(t)
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("status %d, want 400", resp.StatusCode)
		}
	})
}

func TestForeignARNs(t *testing.T) {
	ctx := context.Background()
	_, clients := tenantsServer(t, Options{})
	east := clients["east"]
	own := createKey(t, east, nil)
	west := createKey(t, clients["west"], nil)
	other := createKey(t, clients["other"], nil)
	must(clients["west"].CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/west"), TargetKeyId: west.KeyId}))(t)

	tests := []struct {
		name        string
		call        func() error
		wantCode    string
		wantMessage string
	}{{
		name: "key ARN of another region",
		call: func() error {
			_, err := east.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: west.Arn})
			return err
		},
		wantCode: "NotFoundException", wantMessage: "Invalid arn us-west-2",
	}, {
		name: "alias ARN of another region",
		call: func() error {
			_, err := east.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("arn:aws:kms:us-west-2:111122223333:alias/west")})
			return err
		},
		wantCode: "NotFoundException", wantMessage: "Invalid arn us-west-2",
	}, {
		name: "encrypt with a key of another region",
		call: func() error {
			_, err := east.Encrypt(ctx, &kms.EncryptInput{KeyId: west.Arn, Plaintext: []byte("x")})
			return err
		},
		wantCode: "NotFoundException",
	}, {
		name: "grant on a key of another region",
		call: func() error {
			_, err := east.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: west.Arn, GranteePrincipal: aws.String("app"),
				Operations: []types.GrantOperation{types.GrantOperationDecrypt}})
			return err
		},
		wantCode: "NotFoundException",
	}, {
		name: "key ARN of another partition",
		call: func() error {
			_, err := east.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(strings.Replace(*own.Arn, "arn:aws:", "arn:aws-cn:", 1))})
			return err
		},
		wantCode: "NotFoundException",
	}, {
		name: "key ARN of another account",
		call: func() error {
			_, err := east.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: other.Arn})
			return err
		},
		wantCode: "AccessDeniedException", wantMessage: "User: arn:aws:iam::111122223333:root is not authorized to perform: kms:DescribeKey",
	}, {
		name: "own key ARN",
		call: func() error {
			_, err := east.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: own.Arn})
			return err
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := errCode(err); got != tt.wantCode {
				t.Fatalf("error %v, want code %q", err, tt.wantCode)
			}
			if err != nil && !strings.Contains(err.Error(), tt.wantMessage) {
				t.Errorf("error %v, want message %q", err, tt.wantMessage)
			}
		})
	}
}

func TestPartitions(t *testing.T) {
	ctx := context.Background()
	s := startWith(t, Options{}, nil)
	tests := []struct {
		region, partition string
	}{
		{"us-east-1", "aws"},
		{"cn-north-1", "aws-cn"},
		{"us-gov-west-1", "aws-us-gov"},
		{"us-iso-east-1", "aws-iso"},
		{"us-isob-east-1", "aws-iso-b"},
		{"eu-isoe-west-1", "aws-iso-e"},
		{"us-isof-south-1", "aws-iso-f"},
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			c := s.kmsAs(tt.region, "local")
			prefix := "arn:" + tt.partition + ":kms:" + tt.region + ":111122223333:"
			root := "arn:" + tt.partition + ":iam::111122223333:root"
			md := createKey(t, c, nil)
			if !strings.HasPrefix(*md.Arn, prefix+"key/") {
				t.Errorf("key ARN %s, want %skey/...", *md.Arn, prefix)
			}
			if got := describe(t, c, *md.Arn); *got.Arn != *md.Arn {
				t.Errorf("DescribeKey by ARN: %s", *got.Arn)
			}
			policy := must(c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: md.Arn}))(t).Policy
			if !strings.Contains(*policy, `"`+root+`"`) || strings.Contains(tt.partition, "-") && strings.Contains(*policy, "arn:aws:") {
				t.Errorf("default policy %s, want the root principal %s", *policy, root)
			}

			// An account id given as a principal is kept as its root ARN,
			// in the key's partition.
			bare := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["111122223333"]},"Action":"kms:*","Resource":"*"}]}`
			must(c.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: md.Arn, Policy: aws.String(bare)}))(t)
			if p := *must(c.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: md.Arn}))(t).Policy; !strings.Contains(p, `"`+root+`"`) || strings.Contains(p, `"111122223333"`) {
				t.Errorf("policy stored as %s, want the account as %s", p, root)
			}

			must(c.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: md.Arn, GranteePrincipal: aws.String("arn:" + tt.partition + ":iam::111122223333:role/app"),
				Operations: []types.GrantOperation{types.GrantOperationDecrypt}}))(t)
			grants := must(c.ListGrants(ctx, &kms.ListGrantsInput{KeyId: md.Arn}))(t).Grants
			if len(grants) != 1 || *grants[0].IssuingAccount != root || *grants[0].KeyId != *md.Arn {
				t.Errorf("grants %+v, want one issued by %s on %s", grants, root, *md.Arn)
			}

			must(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/app"), TargetKeyId: md.Arn}))(t)
			aliases := must(c.ListAliases(ctx, &kms.ListAliasesInput{}))(t).Aliases
			if len(aliases) != 1 || *aliases[0].AliasArn != prefix+"alias/app" {
				t.Errorf("aliases %+v, want %salias/app", aliases, prefix)
			}

			enc := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(prefix + "alias/app"), Plaintext: []byte("x")}))(t)
			dec := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))(t)
			if *enc.KeyId != *md.Arn || *dec.KeyId != *md.Arn || string(dec.Plaintext) != "x" {
				t.Errorf("Encrypt key %s, Decrypt key %s and %q; want %s", *enc.KeyId, *dec.KeyId, dec.Plaintext, *md.Arn)
			}
		})
	}
}

func TestPartitionOf(t *testing.T) {
	for region, want := range map[string]string{
		"us-east-1": "aws", "eu-west-1": "aws", "cn-northwest-1": "aws-cn", "us-gov-east-1": "aws-us-gov",
		"us-iso-west-1": "aws-iso", "us-isob-east-1": "aws-iso-b", "eu-isoe-west-1": "aws-iso-e",
		"us-isof-east-1": "aws-iso-f", "eusc-de-east-1": "aws-eusc", "local": "aws",
	} {
		if got := partitionOf(region); got != want {
			t.Errorf("partitionOf(%s) = %s, want %s", region, got, want)
		}
	}
}

func TestCountsPerTenant(t *testing.T) {
	ctx := context.Background()
	s, clients := tenantsServer(t, Options{})
	createKey(t, clients["east"], nil)
	createKey(t, clients["west"], nil)
	createKey(t, clients["west"], nil)
	must(clients["other"].ListKeys(ctx, &kms.ListKeysInput{}))(t)

	tests := []struct {
		query string
		want  map[string]opCount
	}{
		{"", map[string]opCount{"CreateKey": {Requests: 3}, "ListKeys": {Requests: 1}}},
		{"?account=111122223333&region=us-west-2", map[string]opCount{"CreateKey": {Requests: 2}}},
		{"?region=us-east-1", map[string]opCount{"CreateKey": {Requests: 1}, "ListKeys": {Requests: 1}}},
		{"?account=222233334444", map[string]opCount{"ListKeys": {Requests: 1}}},
		{"?account=999999999999&region=us-east-1", map[string]opCount{}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			var got map[string]opCount
			s.getJSON(t, "/_counts"+tt.query, &got)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("counts (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRequests(t *testing.T) {
	ctx := context.Background()
	s, clients := tenantsServer(t, Options{RequestsKept: 3})
	east := clients["east"]
	key := createKey(t, east, nil)
	secret := []byte("the plaintext nobody may see")
	must(east.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyId, Plaintext: secret}))(t)
	grant := must(east.CreateGrant(ctx, &kms.CreateGrantInput{KeyId: key.KeyId, GranteePrincipal: aws.String("app"),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt}}))(t)
	_, _ = clients["other"].DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/missing")})

	var got []requestEntry
	s.getJSON(t, "/_requests", &got)
	var ops []string
	for _, e := range got {
		ops = append(ops, e.Operation)
	}
	if diff := cmp.Diff([]string{"Encrypt", "CreateGrant", "DescribeKey"}, ops); diff != "" {
		t.Fatalf("the last 3 requests (-want +got):\n%s", diff)
	}
	last := got[2]
	if last.Account != otherAccount || last.Region != "us-east-1" || last.AccessKey != "AKIDOTHER" ||
		last.Status != 400 || last.ErrorCode != "NotFoundException" || !strings.Contains(last.UserAgent, "aws-sdk-go") ||
		last.Principal != "arn:aws:iam::222233334444:root" || last.Time.IsZero() {
		t.Errorf("last request %+v", last)
	}
	if first := got[0]; first.Status != 200 || first.ErrorCode != "" || first.Account != testAccount {
		t.Errorf("first request %+v", first)
	}

	s.getJSON(t, "/_requests?last=1", &got)
	if len(got) != 1 || got[0].Operation != "DescribeKey" {
		t.Errorf("?last=1: %+v", got)
	}
	_, raw := s.do(t, http.MethodGet, "/_requests", "")
	for _, leak := range []string{base64.StdEncoding.EncodeToString(secret), string(secret), *grant.GrantToken} {
		if strings.Contains(raw, leak) {
			t.Errorf("/_requests shows a request body: %s", raw)
		}
	}
	for _, bad := range []string{"?last=x", "?last=-1"} {
		if code, _ := s.do(t, http.MethodGet, "/_requests"+bad, ""); code != 400 {
			t.Errorf("GET /_requests%s: %d, want 400", bad, code)
		}
	}
	if code, _ := s.do(t, http.MethodDelete, "/_requests", ""); code != 405 {
		t.Errorf("DELETE /_requests: %d, want 405", code)
	}
	if !slices.IsSortedFunc(got, func(a, b requestEntry) int { return a.Time.Compare(b.Time) }) {
		t.Errorf("requests not oldest first: %+v", got)
	}
}

func TestQuotasPerTenant(t *testing.T) {
	ctx := context.Background()
	_, clients := tenantsServer(t, Options{Config: Config{Quota: map[string]int{"ListKeys": 1}}})
	for _, name := range []string{"east", "west", "other"} {
		if _, err := clients[name].ListKeys(ctx, &kms.ListKeysInput{}); err != nil {
			t.Errorf("%s's first ListKeys: %v", name, err)
		}
	}
	for _, name := range []string{"east", "west", "other"} {
		if _, err := clients[name].ListKeys(ctx, &kms.ListKeysInput{}); errCode(err) != "ThrottlingException" {
			t.Errorf("%s's second ListKeys: %v, want ThrottlingException", name, err)
		}
	}
}
