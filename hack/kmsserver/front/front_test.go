package front

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

const (
	testRegion  = "us-east-1"
	testAccount = "111122223333"
)

// server is a Front on a data dir, served over HTTP.
type server struct {
	front  *Front
	http   *httptest.Server
	client *kms.Client
}

func start(t *testing.T, dir string) *server {
	t.Helper()
	return startWith(t, Options{DataDir: dir}, nil)
}

// startWith serves a Front with opts (the test region and account unless
// given) and, if clock is not nil, that clock.
func startWith(t *testing.T, opts Options, clock *fakeClock) *server {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	if opts.Region == "" {
		opts.Region, opts.AccountID = testRegion, testAccount
	}
	f, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if clock != nil {
		f.clock = clock.Now
	}
	srv := httptest.NewServer(f)
	s := &server{front: f, http: srv}
	s.client = kms.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.NewStaticCredentialsProvider("a", "b", ""),
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	t.Cleanup(s.stop)
	return s
}

// stop shuts the server down; it is safe to call more than once.
func (s *server) stop() {
	if s.http == nil {
		return
	}
	s.http.Close()
	s.front.Close()
	s.http = nil
}

func newTestServer(t *testing.T) *server {
	return start(t, t.TempDir())
}

// must fails the test on a call's error: must(call())(t).
func must[T any](v T, err error) func(*testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// hasCode checks for an error KMS has no type for, such as ValidationException.
func hasCode(code string) func(error) bool {
	return func(err error) bool {
		var apiErr smithy.APIError
		return errors.As(err, &apiErr) && apiErr.ErrorCode() == code
	}
}

// isErr reports whether err is (or wraps) the typed KMS error T.
func isErr[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func createKey(t *testing.T, c *kms.Client, in *kms.CreateKeyInput) types.KeyMetadata {
	t.Helper()
	if in == nil {
		in = &kms.CreateKeyInput{}
	}
	return *must(c.CreateKey(context.Background(), in))(t).KeyMetadata
}

func describe(t *testing.T, c *kms.Client, keyID string) types.KeyMetadata {
	t.Helper()
	return *must(c.DescribeKey(context.Background(), &kms.DescribeKeyInput{KeyId: &keyID}))(t).KeyMetadata
}

func TestCreateAndDescribeKey(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()

	tests := []struct {
		name            string
		in              kms.CreateKeyInput
		wantDescription string
		wantMultiRegion bool
	}{
		{name: "defaults", in: kms.CreateKeyInput{}},
		{name: "description", in: kms.CreateKeyInput{Description: aws.String("payments")}, wantDescription: "payments"},
		{name: "multi-region", in: kms.CreateKeyInput{MultiRegion: aws.Bool(true)}, wantMultiRegion: true},
		{name: "rsa", in: kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			created := createKey(t, s.client, &tt.in)
			for _, md := range []types.KeyMetadata{created, describe(t, s.client, *created.KeyId), describe(t, s.client, *created.Arn)} {
				if md.Description == nil || *md.Description != tt.wantDescription {
					t.Errorf("Description = %v, want %q", md.Description, tt.wantDescription)
				}
				if md.MultiRegion == nil || *md.MultiRegion != tt.wantMultiRegion {
					t.Errorf("MultiRegion = %v, want %v", md.MultiRegion, tt.wantMultiRegion)
				}
				if md.KeyState != types.KeyStateEnabled {
					t.Errorf("KeyState = %s, want Enabled", md.KeyState)
				}
			}
		})
	}

	t.Run("update description", func(t *testing.T) {
		id := createKey(t, s.client, nil).KeyId
		must(s.client.UpdateKeyDescription(ctx, &kms.UpdateKeyDescriptionInput{KeyId: id, Description: aws.String("new")}))(t)
		if got := describe(t, s.client, *id).Description; *got != "new" {
			t.Errorf("Description = %q, want new", *got)
		}
	})

	t.Run("reserved tag", func(t *testing.T) {
		awsTag := []types.Tag{{TagKey: aws.String("aws:x"), TagValue: aws.String("y")}}
		_, err := s.client.CreateKey(ctx, &kms.CreateKeyInput{Tags: awsTag})
		if !isErr[*types.TagException](err) {
			t.Errorf("CreateKey err = %v, want TagException", err)
		}
		id := createKey(t, s.client, nil).KeyId
		_, err = s.client.TagResource(ctx, &kms.TagResourceInput{KeyId: id, Tags: awsTag})
		if !isErr[*types.TagException](err) {
			t.Errorf("TagResource err = %v, want TagException", err)
		}
		must(s.client.TagResource(ctx, &kms.TagResourceInput{KeyId: id, Tags: []types.Tag{{TagKey: aws.String("team"), TagValue: aws.String("a")}}}))(t)
	})

	t.Run("unknown key", func(t *testing.T) {
		_, err := s.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("00000000-0000-0000-0000-000000000000")})
		if !isErr[*types.NotFoundException](err) {
			t.Errorf("err = %v, want NotFoundException", err)
		}
	})
}

func TestGrants(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	key := createKey(t, s.client, nil)
	other := createKey(t, s.client, nil)

	grantIn := func(mod func(*kms.CreateGrantInput)) *kms.CreateGrantInput {
		in := &kms.CreateGrantInput{
			KeyId:             key.KeyId,
			GranteePrincipal:  aws.String("arn:aws:iam::111122223333:role/app"),
			RetiringPrincipal: aws.String("arn:aws:iam::111122223333:role/admin"),
			Operations:        []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt},
			Name:              aws.String("app"),
		}
		if mod != nil {
			mod(in)
		}
		return in
	}
	first := must(s.client.CreateGrant(ctx, grantIn(nil)))(t)
	if first.GrantId == nil || first.GrantToken == nil || *first.GrantToken == "" {
		t.Fatalf("CreateGrant = %+v, want id and token", first)
	}

	idempotency := []struct {
		name     string
		mod      func(*kms.CreateGrantInput)
		wantSame bool
	}{
		{name: "same parameters", wantSame: true},
		{name: "same parameters by ARN, operations reordered", wantSame: true, mod: func(in *kms.CreateGrantInput) {
			in.KeyId = key.Arn
			in.Operations = []types.GrantOperation{types.GrantOperationDecrypt, types.GrantOperationEncrypt}
		}},
		{name: "different operations", mod: func(in *kms.CreateGrantInput) {
			in.Operations = []types.GrantOperation{types.GrantOperationDecrypt}
		}},
		{name: "different constraints", mod: func(in *kms.CreateGrantInput) {
			in.Constraints = &types.GrantConstraints{EncryptionContextSubset: map[string]string{"app": "x"}}
		}},
		{name: "other key", mod: func(in *kms.CreateGrantInput) { in.KeyId = other.KeyId }},
	}
	for _, tt := range idempotency {
		t.Run(tt.name, func(t *testing.T) {
			got := must(s.client.CreateGrant(ctx, grantIn(tt.mod)))(t)
			if same := *got.GrantId == *first.GrantId; same != tt.wantSame {
				t.Errorf("GrantId %s vs first %s: same = %v, want %v", *got.GrantId, *first.GrantId, same, tt.wantSame)
			}
		})
	}

	t.Run("list", func(t *testing.T) {
		all := must(s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId}))(t)
		if len(all.Grants) != 3 || all.Truncated {
			t.Fatalf("ListGrants = %d grants (truncated %v), want 3", len(all.Grants), all.Truncated)
		}
		g := all.Grants[0]
		if *g.GrantId != *first.GrantId || *g.KeyId != *key.Arn || *g.Name != "app" || len(g.Operations) != 2 || g.CreationDate == nil {
			t.Errorf("first grant = %+v", g)
		}
		if c := all.Grants[2].Constraints; c == nil || c.EncryptionContextSubset["app"] != "x" {
			t.Errorf("constraints = %+v", c)
		}

		byID := must(s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId, GrantId: first.GrantId}))(t)
		if len(byID.Grants) != 1 {
			t.Errorf("ListGrants by GrantId = %d grants, want 1", len(byID.Grants))
		}
		byGrantee := must(s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId, GranteePrincipal: aws.String("nobody")}))(t)
		if len(byGrantee.Grants) != 0 {
			t.Errorf("ListGrants by unknown grantee = %d grants, want 0", len(byGrantee.Grants))
		}

		var paged []types.GrantListEntry
		p := kms.NewListGrantsPaginator(s.client, &kms.ListGrantsInput{KeyId: key.KeyId, Limit: aws.Int32(2)})
		for p.HasMorePages() {
			paged = append(paged, must(p.NextPage(ctx))(t).Grants...)
		}
		if len(paged) != 3 {
			t.Errorf("paged ListGrants = %d grants, want 3", len(paged))
		}

		retirable := must(s.client.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String("arn:aws:iam::111122223333:role/admin")}))(t)
		if len(retirable.Grants) != 4 {
			t.Errorf("ListRetirableGrants = %d grants, want 4", len(retirable.Grants))
		}
	})

	t.Run("retire and revoke", func(t *testing.T) {
		grants := must(s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId}))(t).Grants
		must(s.client.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: first.GrantToken}))(t)
		must(s.client.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: key.Arn, GrantId: grants[1].GrantId}))(t)
		must(s.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: key.KeyId, GrantId: grants[2].GrantId}))(t)
		if left := must(s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId}))(t).Grants; len(left) != 0 {
			t.Errorf("%d grants left, want 0", len(left))
		}
	})

	pending := createKey(t, s.client, nil)
	must(s.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: pending.KeyId}))(t)

	errorCases := []struct {
		name  string
		call  func() error
		check func(error) bool
	}{
		{"revoke unknown grant", func() error {
			_, err := s.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: key.KeyId, GrantId: first.GrantId})
			return err
		}, isErr[*types.NotFoundException]},
		{"retire unknown grant id", func() error {
			_, err := s.client.RetireGrant(ctx, &kms.RetireGrantInput{KeyId: key.KeyId, GrantId: aws.String("nope")})
			return err
		}, isErr[*types.NotFoundException]},
		{"retire unknown token", func() error {
			_, err := s.client.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: first.GrantToken})
			return err
		}, isErr[*types.InvalidGrantTokenException]},
		{"grant on unknown key", func() error {
			_, err := s.client.CreateGrant(ctx, grantIn(func(in *kms.CreateGrantInput) { in.KeyId = aws.String("00000000-0000-0000-0000-000000000000") }))
			return err
		}, isErr[*types.NotFoundException]},
		{"list grants of unknown key", func() error {
			_, err := s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: aws.String("00000000-0000-0000-0000-000000000000")})
			return err
		}, isErr[*types.NotFoundException]},
		{"grant on key pending deletion", func() error {
			_, err := s.client.CreateGrant(ctx, grantIn(func(in *kms.CreateGrantInput) { in.KeyId = pending.KeyId }))
			return err
		}, isErr[*types.KMSInvalidStateException]},
		{"unknown operation", func() error {
			_, err := s.client.CreateGrant(ctx, grantIn(func(in *kms.CreateGrantInput) { in.Operations = []types.GrantOperation{"Explode"} }))
			return err
		}, hasCode("ValidationException")},
		{"bad marker", func() error {
			_, err := s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId, Marker: aws.String("x")})
			return err
		}, isErr[*types.InvalidMarkerException]},
	}
	for _, tt := range errorCases {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !tt.check(err) {
				t.Errorf("err = %v (%T)", err, err)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	key := createKey(t, s.client, nil)

	status := func(t *testing.T) *kms.GetKeyRotationStatusOutput {
		t.Helper()
		return must(s.client.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: key.KeyId}))(t)
	}

	periods := []struct {
		name       string
		period     *int32
		wantPeriod int32
		wantErr    bool
	}{
		{name: "default", wantPeriod: 365},
		{name: "180 days", period: aws.Int32(180), wantPeriod: 180},
		{name: "too short", period: aws.Int32(89), wantErr: true},
		{name: "too long", period: aws.Int32(2561), wantErr: true},
	}
	for _, tt := range periods {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: key.KeyId, RotationPeriodInDays: tt.period})
			if tt.wantErr {
				if !hasCode("ValidationException")(err) {
					t.Errorf("err = %v, want ValidationException", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st := status(t)
			if !st.KeyRotationEnabled || *st.KeyId != *key.Arn || st.RotationPeriodInDays == nil || *st.RotationPeriodInDays != tt.wantPeriod {
				t.Fatalf("status = %+v, want enabled with period %d", st, tt.wantPeriod)
			}
			if want := key.CreationDate.AddDate(0, 0, int(tt.wantPeriod)); st.NextRotationDate == nil || !st.NextRotationDate.Equal(want) {
				t.Errorf("NextRotationDate = %v, want %v", st.NextRotationDate, want)
			}
		})
	}

	t.Run("on demand", func(t *testing.T) {
		plain := []byte("secret")
		enc := must(s.client.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyId, Plaintext: plain}))(t)
		must(s.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: key.KeyId}))(t)
		must(s.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: key.Arn}))(t)

		rotations := must(s.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: key.KeyId, Limit: aws.Int32(1)}))(t)
		if len(rotations.Rotations) != 1 || !rotations.Truncated || rotations.NextMarker == nil {
			t.Fatalf("first page = %+v, want 1 rotation and a marker", rotations)
		}
		r := rotations.Rotations[0]
		if r.RotationType != types.RotationTypeOnDemand || r.RotationDate == nil || time.Since(*r.RotationDate) > time.Minute || *r.KeyId != *key.Arn {
			t.Errorf("rotation = %+v", r)
		}
		rest := must(s.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: key.KeyId, Marker: rotations.NextMarker}))(t)
		if len(rest.Rotations) != 1 || rest.Truncated {
			t.Errorf("second page = %+v, want the last rotation", rest)
		}

		dec := must(s.client.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))(t)
		if string(dec.Plaintext) != string(plain) {
			t.Errorf("decrypt after rotation = %q", dec.Plaintext)
		}
	})

	t.Run("disable", func(t *testing.T) {
		must(s.client.DisableKeyRotation(ctx, &kms.DisableKeyRotationInput{KeyId: key.KeyId}))(t)
		if st := status(t); st.KeyRotationEnabled || st.RotationPeriodInDays != nil || st.NextRotationDate != nil {
			t.Errorf("status = %+v, want disabled without period", st)
		}
	})

	t.Run("asymmetric keys cannot rotate", func(t *testing.T) {
		rsa := createKey(t, s.client, &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeSignVerify})
		_, err := s.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: rsa.KeyId})
		if !isErr[*types.UnsupportedOperationException](err) {
			t.Errorf("RotateKeyOnDemand err = %v, want UnsupportedOperationException", err)
		}
		_, err = s.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: rsa.KeyId})
		if !isErr[*types.UnsupportedOperationException](err) {
			t.Errorf("ListKeyRotations err = %v, want UnsupportedOperationException", err)
		}
	})
}

func TestKeyDeletion(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()

	windows := []struct {
		name   string
		window *int32
		want   int32
	}{
		{name: "default window", want: 30},
		{name: "7 days", window: aws.Int32(7), want: 7},
	}
	for _, tt := range windows {
		t.Run(tt.name, func(t *testing.T) {
			key := createKey(t, s.client, nil)
			out := must(s.client.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: key.KeyId, PendingWindowInDays: tt.window}))(t)
			if out.KeyState != types.KeyStatePendingDeletion || out.PendingWindowInDays == nil || *out.PendingWindowInDays != tt.want || out.DeletionDate == nil || *out.KeyId != *key.Arn {
				t.Errorf("ScheduleKeyDeletion = %+v", out)
			}
			if st := describe(t, s.client, *key.KeyId).KeyState; st != types.KeyStatePendingDeletion {
				t.Errorf("KeyState = %s, want PendingDeletion", st)
			}

			must(s.client.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: key.KeyId}))(t)
			md := describe(t, s.client, *key.KeyId)
			if md.KeyState != types.KeyStateDisabled || md.Enabled {
				t.Errorf("after cancel: KeyState %s Enabled %v, want Disabled", md.KeyState, md.Enabled)
			}
		})
	}
}

func TestKeyPolicies(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()
	const policy = `{"Version":"2012-10-17","Statement":[]}`

	keys := []struct {
		name string
		in   *kms.CreateKeyInput
	}{
		{name: "symmetric"},
		{name: "rsa", in: &kms.CreateKeyInput{KeySpec: types.KeySpecRsa2048, KeyUsage: types.KeyUsageTypeEncryptDecrypt}},
		{name: "hmac", in: &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac}},
	}
	for _, tt := range keys {
		t.Run(tt.name, func(t *testing.T) {
			id := createKey(t, s.client, tt.in).KeyId
			names := must(s.client.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: id}))(t)
			if len(names.PolicyNames) != 1 || names.PolicyNames[0] != "default" || names.Truncated {
				t.Errorf("ListKeyPolicies = %+v", names)
			}
			must(s.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, Policy: aws.String(policy)}))(t)
			got := must(s.client.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: id}))(t)
			if *got.Policy != policy {
				t.Errorf("policy = %s, want %s", *got.Policy, policy)
			}
		})
	}

	t.Run("malformed", func(t *testing.T) {
		id := createKey(t, s.client, nil).KeyId
		_, err := s.client.PutKeyPolicy(ctx, &kms.PutKeyPolicyInput{KeyId: id, Policy: aws.String("{")})
		if !isErr[*types.MalformedPolicyDocumentException](err) {
			t.Errorf("err = %v, want MalformedPolicyDocumentException", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		_, err := s.client.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: aws.String("00000000-0000-0000-0000-000000000000")})
		if !isErr[*types.NotFoundException](err) {
			t.Errorf("err = %v, want NotFoundException", err)
		}
	})
}

func TestCounts(t *testing.T) {
	s := newTestServer(t)
	ctx := context.Background()

	req, _ := http.NewRequest(http.MethodDelete, s.http.URL+"/_counts", nil)
	must(http.DefaultClient.Do(req))(t).Body.Close()

	key := createKey(t, s.client, nil)
	describe(t, s.client, *key.KeyId)
	_, _ = s.client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("missing")}) // counted as an error
	must(s.client.ListKeyPolicies(ctx, &kms.ListKeyPoliciesInput{KeyId: key.KeyId}))(t)

	resp := must(http.Get(s.http.URL + "/_counts"))(t)
	defer resp.Body.Close()
	var got map[string]opCount
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]opCount{
		"CreateKey":       {Requests: 1},
		"DescribeKey":     {Requests: 2, Errors: 1},
		"ListKeyPolicies": {Requests: 1},
	}
	if len(got) != len(want) {
		t.Errorf("counts = %v, want %v", got, want)
	}
	for op, w := range want {
		if got[op] != w {
			t.Errorf("%s = %+v, want %+v", op, got[op], w)
		}
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s := start(t, dir)
	key := createKey(t, s.client, &kms.CreateKeyInput{Description: aws.String("kept"), MultiRegion: aws.Bool(true)})
	grant := must(s.client.CreateGrant(ctx, &kms.CreateGrantInput{
		KeyId: key.KeyId, GranteePrincipal: aws.String("app"), Name: aws.String("g"),
		Operations: []types.GrantOperation{types.GrantOperationDecrypt},
	}))(t)
	must(s.client.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: key.KeyId, RotationPeriodInDays: aws.Int32(100)}))(t)
	must(s.client.RotateKeyOnDemand(ctx, &kms.RotateKeyOnDemandInput{KeyId: key.KeyId}))(t)
	s.stop()

	s = start(t, dir)
	md := describe(t, s.client, *key.KeyId)
	if *md.Description != "kept" || !*md.MultiRegion {
		t.Errorf("after restart: Description %q MultiRegion %v", *md.Description, *md.MultiRegion)
	}
	grants := must(s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId}))(t).Grants
	if len(grants) != 1 || *grants[0].GrantId != *grant.GrantId {
		t.Errorf("after restart: grants %+v", grants)
	}
	if st := must(s.client.GetKeyRotationStatus(ctx, &kms.GetKeyRotationStatusInput{KeyId: key.KeyId}))(t); *st.RotationPeriodInDays != 100 {
		t.Errorf("after restart: period %d, want 100", *st.RotationPeriodInDays)
	}
	if r := must(s.client.ListKeyRotations(ctx, &kms.ListKeyRotationsInput{KeyId: key.KeyId}))(t).Rotations; len(r) != 1 {
		t.Errorf("after restart: %d rotations, want 1", len(r))
	}
	must(s.client.RetireGrant(ctx, &kms.RetireGrantInput{GrantToken: grant.GrantToken}))(t)
}
