package front

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
)

const (
	operatorRole = "arn:aws:iam::222233334444:role/kms-operator"
	chainedRole  = "arn:aws:iam::333344445555:role/path/next"
)

// stsRoles trust: the operator role, the default account (with an external
// id); the chained role, sessions of the operator role.
var stsRoles = []Role{
	{ARN: operatorRole, Trust: []string{"arn:aws:iam::111122223333:root"}, ExternalID: "ext-1", MaxSessionDuration: Duration(2 * time.Hour)},
	{ARN: chainedRole, Trust: []string{operatorRole}, MaxSessionDuration: Duration(4 * time.Hour)},
}

// stsAs is an STS client of s signing with creds.
func (s *server) stsAs(creds aws.Credentials) *sts.Client {
	return sts.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.StaticCredentialsProvider{Value: creds},
		Retryer:     func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewStandard(), 1) },
	}, func(o *sts.Options) { o.BaseEndpoint = aws.String(s.http.URL) })
}

// kmsWith is a KMS client of s signing with creds.
func (s *server) kmsWith(creds aws.Credentials) *kms.Client {
	return kms.NewFromConfig(aws.Config{
		Region:      testRegion,
		Credentials: credentials.StaticCredentialsProvider{Value: creds},
		Retryer:     func() aws.Retryer { return retry.AddWithMaxAttempts(retry.NewStandard(), 1) },
	}, func(o *kms.Options) { o.BaseEndpoint = aws.String(s.http.URL) })
}

func static(key string) aws.Credentials {
	return aws.Credentials{AccessKeyID: key, SecretAccessKey: "secret"}
}

func sessionCreds(c *ststypes.Credentials) aws.Credentials {
	return aws.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey, SessionToken: *c.SessionToken}
}

func stsServer(t *testing.T) (*server, *fakeClock) {
	clock := newFakeClock()
	opts := Options{}
	opts.Config.Roles = stsRoles
	opts.Config.AccessKeys = map[string]string{"AKIDOTHER": otherAccount}
	return startWith(t, opts, clock), clock
}

func TestAssumeRole(t *testing.T) {
	ctx := context.Background()
	s, clock := stsServer(t)
	root := s.stsAs(static("local"))

	me := must(root.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if *me.Account != testAccount || *me.Arn != "arn:aws:iam::111122223333:root" || *me.UserId != testAccount {
		t.Errorf("GetCallerIdentity of a static key = %s %s %s", *me.Account, *me.Arn, *me.UserId)
	}

	out := must(root.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(operatorRole), RoleSessionName: aws.String("reconcile"),
		ExternalId: aws.String("ext-1"), DurationSeconds: aws.Int32(7200)}))(t)
	creds := out.Credentials
	if !regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`).MatchString(*creds.AccessKeyId) || *creds.SecretAccessKey == "" || *creds.SessionToken == "" ||
		!creds.Expiration.Equal(clock.Now().Add(2*time.Hour)) {
		t.Errorf("credentials %s, expiring %v; want ASIA..., in 2h", *creds.AccessKeyId, creds.Expiration)
	}
	wantARN := "arn:aws:sts::222233334444:assumed-role/kms-operator/reconcile"
	if *out.AssumedRoleUser.Arn != wantARN || !regexp.MustCompile(`^AROA[A-Z2-7]{17}:reconcile$`).MatchString(*out.AssumedRoleUser.AssumedRoleId) {
		t.Errorf("AssumedRoleUser %s %s", *out.AssumedRoleUser.Arn, *out.AssumedRoleUser.AssumedRoleId)
	}
	session := sessionCreds(creds)
	who := must(s.stsAs(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if *who.Account != otherAccount || *who.Arn != wantARN || *who.UserId != *out.AssumedRoleUser.AssumedRoleId {
		t.Errorf("GetCallerIdentity of the session = %s %s %s", *who.Account, *who.Arn, *who.UserId)
	}
	key := createKey(t, s.kmsWith(session), nil)
	if !strings.HasPrefix(*key.Arn, "arn:aws:kms:us-east-1:222233334444:key/") {
		t.Errorf("the session made key %s, want one of the role's account", *key.Arn)
	}

	tests := []struct {
		name     string
		creds    aws.Credentials
		in       sts.AssumeRoleInput
		wantCode string
	}{
		{"another account is not trusted", static("AKIDOTHER"),
			sts.AssumeRoleInput{RoleArn: aws.String(operatorRole), RoleSessionName: aws.String("x1"), ExternalId: aws.String("ext-1")}, "AccessDenied"},
		{"a wrong external id", static("local"),
			sts.AssumeRoleInput{RoleArn: aws.String(operatorRole), RoleSessionName: aws.String("x1"), ExternalId: aws.String("nope")}, "AccessDenied"},
		{"no external id", static("local"),
			sts.AssumeRoleInput{RoleArn: aws.String(operatorRole), RoleSessionName: aws.String("x1")}, "AccessDenied"},
		{"an unknown role", static("local"),
			sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::222233334444:role/nope"), RoleSessionName: aws.String("x1")}, "AccessDenied"},
		{"longer than the role allows", static("local"),
			sts.AssumeRoleInput{RoleArn: aws.String(operatorRole), RoleSessionName: aws.String("x1"), ExternalId: aws.String("ext-1"), DurationSeconds: aws.Int32(7201)}, "ValidationError"},
		{"shorter than 15 minutes", static("local"),
			sts.AssumeRoleInput{RoleArn: aws.String(operatorRole), RoleSessionName: aws.String("x1"), ExternalId: aws.String("ext-1"), DurationSeconds: aws.Int32(899)}, "ValidationError"},
		{"a bad session name", static("local"),
			sts.AssumeRoleInput{RoleArn: aws.String(operatorRole), RoleSessionName: aws.String("a b"), ExternalId: aws.String("ext-1")}, "ValidationError"},
		{"the root of the role's own account is not trusted", static("AKIDOTHER"),
			sts.AssumeRoleInput{RoleArn: aws.String(chainedRole), RoleSessionName: aws.String("x1")}, "AccessDenied"},
		{"a trusted role's session", session,
			sts.AssumeRoleInput{RoleArn: aws.String(chainedRole), RoleSessionName: aws.String("chained")}, ""},
		{"role chaining is limited to an hour", session,
			sts.AssumeRoleInput{RoleArn: aws.String(chainedRole), RoleSessionName: aws.String("chained"), DurationSeconds: aws.Int32(3601)}, "ValidationError"},
		{"an external id the role does not ask for is ignored", session,
			sts.AssumeRoleInput{RoleArn: aws.String(chainedRole), RoleSessionName: aws.String("chained"), ExternalId: aws.String("any")}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.stsAs(tt.creds).AssumeRole(ctx, &tt.in)
			if errCode(err) != tt.wantCode {
				t.Errorf("err %v, want %q", err, tt.wantCode)
			}
			if tt.wantCode == "AccessDenied" && statusCode(err) != http.StatusForbidden {
				t.Errorf("status %d, want 403", statusCode(err))
			}
		})
	}

	t.Run("roles changed at run time", func(t *testing.T) {
		cfg := s.front.Config()
		cfg.Roles = cfg.Roles[1:]
		s.configure(t, cfg)
		_, err := root.AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(operatorRole), RoleSessionName: aws.String("again"), ExternalId: aws.String("ext-1")})
		if errCode(err) != "AccessDenied" {
			t.Errorf("AssumeRole of a deleted role: %v, want AccessDenied", err)
		}
		// Issued credentials work until they expire.
		describe(t, s.kmsWith(session), *key.KeyId)
		counts := s.counts(t)
		if counts["AssumeRole"].Requests != 1 || counts["AssumeRole"].Errors != 1 || counts["DescribeKey"].Requests != 1 {
			t.Errorf("counts %+v", counts)
		}
	})

	t.Run("expired", func(t *testing.T) {
		clock.Advance(2 * time.Hour)
		_, err := s.kmsWith(session).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: key.KeyId})
		if errCode(err) != "ExpiredTokenException" || statusCode(err) != http.StatusBadRequest {
			t.Errorf("KMS with expired credentials: %v (%d), want 400 ExpiredTokenException", err, statusCode(err))
		}
		_, err = s.stsAs(session).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if errCode(err) != "ExpiredToken" || statusCode(err) != http.StatusForbidden {
			t.Errorf("STS with expired credentials: %v (%d), want 403 ExpiredToken", err, statusCode(err))
		}
	})
}

func TestAssumeRoleSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := Options{DataDir: dir}
	opts.Config.Roles = stsRoles
	s := startWith(t, opts, nil)
	out := must(s.stsAs(static("local")).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String(operatorRole),
		RoleSessionName: aws.String("restart"), ExternalId: aws.String("ext-1")}))(t)
	s.stop()

	s = startWith(t, Options{DataDir: dir}, nil)
	who := must(s.stsAs(sessionCreds(out.Credentials)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}))(t)
	if *who.Account != otherAccount {
		t.Errorf("after a restart the session is account %s's, want %s's", *who.Account, otherAccount)
	}
}

func TestRolesConfig(t *testing.T) {
	s := newTestServer(t)
	tests := []struct {
		name     string
		body     string
		wantCode int
	}{
		{"valid", `{"roles":[{"arn":"arn:aws:iam::222233334444:role/a","trust":["111122223333"],"maxSessionDuration":"12h"}]}`, 200},
		{"not a role", `{"roles":[{"arn":"arn:aws:iam::222233334444:user/a","trust":["111122223333"]}]}`, 400},
		{"trusting nobody", `{"roles":[{"arn":"arn:aws:iam::222233334444:role/a"}]}`, 400},
		{"too long a session", `{"roles":[{"arn":"arn:aws:iam::222233334444:role/a","trust":["111122223333"],"maxSessionDuration":"13h"}]}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if code, body := s.do(t, http.MethodPut, "/_config", tt.body); code != tt.wantCode {
				t.Errorf("PUT /_config: %d %s, want %d", code, body, tt.wantCode)
			}
		})
	}
	if got := s.front.Config().Roles; len(got) != 1 || got[0].MaxSessionDuration != Duration(12*time.Hour) {
		t.Errorf("roles in force %+v", got)
	}
}
