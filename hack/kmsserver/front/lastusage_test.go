package front

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go/middleware"
)

func TestServicePrincipalGrants(t *testing.T) {
	ctx := context.Background()
	s := newTestServer(t)
	key := createKey(t, s.client, nil)
	hmac := createKey(t, s.client, &kms.CreateKeyInput{KeySpec: types.KeySpecHmac256, KeyUsage: types.KeyUsageTypeGenerateVerifyMac})
	const svc, source = "dynamodb.amazonaws.com", "arn:aws:dynamodb:us-east-1:111122223333:table/Example"
	in := func(mod func(*kms.CreateGrantInput)) *kms.CreateGrantInput {
		in := &kms.CreateGrantInput{
			KeyId: key.KeyId, GranteeServicePrincipal: aws.String(svc), RetiringServicePrincipal: aws.String(svc),
			Operations:  []types.GrantOperation{types.GrantOperationEncrypt, types.GrantOperationDecrypt},
			Constraints: &types.GrantConstraints{SourceArn: aws.String(source)}, Name: aws.String("ddb"),
		}
		if mod != nil {
			mod(in)
		}
		return in
	}
	first := must(s.client.CreateGrant(ctx, in(nil)))(t)

	tests := []struct {
		name     string
		mod      func(*kms.CreateGrantInput)
		wantCode string
		wantSame bool
	}{
		{name: "same parameters", wantSame: true},
		{name: "another source ARN", mod: func(in *kms.CreateGrantInput) { in.Constraints.SourceArn = aws.String(source + "2") }},
		{name: "another retiring principal", mod: func(in *kms.CreateGrantInput) {
			in.RetiringServicePrincipal, in.RetiringPrincipal = nil, aws.String("arn:aws:iam::111122223333:role/admin")
		}},
		{name: "no SourceArn", mod: func(in *kms.CreateGrantInput) { in.Constraints = nil }, wantCode: "ValidationException"},
		{name: "no retiring principal", mod: func(in *kms.CreateGrantInput) { in.RetiringServicePrincipal = nil }, wantCode: "ValidationException"},
		{name: "both grantees", mod: func(in *kms.CreateGrantInput) { in.GranteePrincipal = aws.String("arn:aws:iam::111122223333:role/app") }, wantCode: "ValidationException"},
		{name: "no grantee", mod: func(in *kms.CreateGrantInput) { in.GranteeServicePrincipal = nil }, wantCode: "ValidationException"},
		{name: "both retiring principals", mod: func(in *kms.CreateGrantInput) {
			in.RetiringPrincipal = aws.String("arn:aws:iam::111122223333:role/admin")
		}, wantCode: "ValidationException"},
		{name: "not a service principal", mod: func(in *kms.CreateGrantInput) { in.GranteeServicePrincipal = aws.String("dynamodb") }, wantCode: "ValidationException"},
		{name: "an operation the key lacks", mod: func(in *kms.CreateGrantInput) { in.Operations = []types.GrantOperation{types.GrantOperationSign} }, wantCode: "ValidationException"},
		{name: "SourceArn with a grantee principal", mod: func(in *kms.CreateGrantInput) {
			in.GranteeServicePrincipal, in.RetiringServicePrincipal, in.GranteePrincipal = nil, nil, aws.String("arn:aws:iam::111122223333:role/app")
		}},
		{name: "an HMAC key's operations", mod: func(in *kms.CreateGrantInput) {
			in.KeyId, in.Operations = hmac.KeyId, []types.GrantOperation{types.GrantOperationGenerateMac, types.GrantOperationDescribeKey}
		}},
		{name: "encryption on an HMAC key", mod: func(in *kms.CreateGrantInput) { in.KeyId = hmac.KeyId }, wantCode: "ValidationException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.client.CreateGrant(ctx, in(tt.mod))
			if errCode(err) != tt.wantCode {
				t.Fatalf("err %v, want %q", err, tt.wantCode)
			}
			if err == nil && (*got.GrantId == *first.GrantId) != tt.wantSame {
				t.Errorf("grant %s vs first %s, want same %v", *got.GrantId, *first.GrantId, tt.wantSame)
			}
		})
	}

	listed := must(s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId, GrantId: first.GrantId}))(t).Grants
	if len(listed) != 1 {
		t.Fatalf("ListGrants = %d grants", len(listed))
	}
	g := listed[0]
	if g.GranteePrincipal != nil || *g.GranteeServicePrincipal != svc || *g.RetiringServicePrincipal != svc || g.RetiringPrincipal != nil ||
		*g.Constraints.SourceArn != source {
		t.Errorf("grant %+v, constraints %+v", g, g.Constraints)
	}
	byService := must(s.client.ListGrants(ctx, &kms.ListGrantsInput{KeyId: key.KeyId, GranteeServicePrincipal: aws.String(svc)}))(t).Grants
	if len(byService) != 3 {
		t.Errorf("ListGrants by service principal = %d grants, want 3", len(byService))
	}
	retirable := must(s.client.ListRetirableGrants(ctx, &kms.ListRetirableGrantsInput{RetiringPrincipal: aws.String(svc)}))(t).Grants
	if len(retirable) != 3 {
		t.Errorf("ListRetirableGrants of the service = %d grants, want 3", len(retirable))
	}
	must(s.client.RevokeGrant(ctx, &kms.RevokeGrantInput{KeyId: key.KeyId, GrantId: first.GrantId}))(t)
}

// requestID is the request id of an SDK answer.
func requestID(md middleware.Metadata) string {
	id, _ := awsmiddleware.GetRequestIDMetadata(md)
	return id
}

func TestGetKeyLastUsage(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	s := startWith(t, Options{}, clock)
	c := s.client
	created := clock.Now()
	key := createKey(t, c, nil)
	other := createKey(t, c, nil)

	usage := func(t *testing.T, keyID string) *kms.GetKeyLastUsageOutput {
		t.Helper()
		return must(c.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: &keyID}))(t)
	}
	unused := usage(t, *key.KeyId)
	if unused.KeyLastUsage == nil || unused.KeyLastUsage.Operation != "" || unused.KeyLastUsage.Timestamp != nil ||
		*unused.KeyId != *key.KeyId || !unused.KeyCreationDate.Equal(created) || !unused.TrackingStartDate.Equal(created) {
		t.Errorf("unused key: %+v, last usage %+v", unused, unused.KeyLastUsage)
	}

	clock.Advance(time.Minute)
	enc := must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: key.KeyId, Plaintext: []byte("x")}))(t)
	clock.Advance(time.Minute)
	dec := must(c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob}))(t)
	_, _ = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("not a ciphertext")}) // a failure is no use
	clock.Advance(time.Minute)
	re := must(c.ReEncrypt(ctx, &kms.ReEncryptInput{CiphertextBlob: enc.CiphertextBlob, DestinationKeyId: other.KeyId}))(t)
	must(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key.KeyId}))(t) // not cryptographic

	tests := []struct {
		name   string
		keyID  string
		wantOp types.KeyLastUsageTrackingOperation
		wantID string
	}{
		{"the source of a ReEncrypt", *key.KeyId, types.KeyLastUsageTrackingOperationReEncrypt, requestID(re.ResultMetadata)},
		{"its destination", *other.KeyId, types.KeyLastUsageTrackingOperationReEncrypt, requestID(re.ResultMetadata)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := usage(t, tt.keyID).KeyLastUsage
			if u.Operation != tt.wantOp || !u.Timestamp.Equal(clock.Now()) || *u.KmsRequestId != tt.wantID || tt.wantID == "" || *u.CloudTrailEventId == "" {
				t.Errorf("last usage %s at %v, request %v, event %v; want %s now, request %s", u.Operation, u.Timestamp, u.KmsRequestId, u.CloudTrailEventId, tt.wantOp, tt.wantID)
			}
		})
	}
	_ = dec

	t.Run("not tracking yet", func(t *testing.T) {
		start := clock.Now().Add(24 * time.Hour)
		s.configure(t, Config{UsageTrackingStart: map[string]time.Time{testAccount: start}})
		fresh := createKey(t, c, nil)
		must(c.Encrypt(ctx, &kms.EncryptInput{KeyId: fresh.KeyId, Plaintext: []byte("x")}))(t)
		u := usage(t, *fresh.KeyId)
		if u.KeyLastUsage.Operation != "" || !u.TrackingStartDate.Equal(start) {
			t.Errorf("before tracking began: %+v, tracking from %v; want nothing, from %v", u.KeyLastUsage, u.TrackingStartDate, start)
		}
		if old := usage(t, *key.KeyId); !old.TrackingStartDate.Equal(start) || old.KeyLastUsage.Operation != types.KeyLastUsageTrackingOperationReEncrypt {
			t.Errorf("a key used before: %+v from %v", old.KeyLastUsage, old.TrackingStartDate)
		}
	})

	t.Run("aliases are not key ids", func(t *testing.T) {
		must(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/used"), TargetKeyId: key.KeyId}))(t)
		if _, err := c.GetKeyLastUsage(ctx, &kms.GetKeyLastUsageInput{KeyId: aws.String("alias/used")}); errCode(err) != "NotFoundException" {
			t.Errorf("err %v, want NotFoundException", err)
		}
	})
}
