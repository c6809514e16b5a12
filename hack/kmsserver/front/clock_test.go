package front

import (
	"context"
	"flag"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
)

func TestClockOffset(t *testing.T) {
	ctx := context.Background()
	s := startWith(t, Options{}, nil)
	c := s.kmsAs(testRegion, "local")
	doomed := createKey(t, c, nil)
	kept := createKey(t, c, nil)
	must(c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String("alias/doomed"), TargetKeyId: doomed.KeyId}))(t)
	scheduled := must(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: doomed.KeyId, PendingWindowInDays: aws.Int32(7)}))(t)

	if code, body := s.do(t, http.MethodPut, "/_config", `{"clockOffset":"-1h"}`); code != http.StatusBadRequest {
		t.Errorf("a negative offset: %d %s, want 400", code, body)
	}
	if code, body := s.do(t, http.MethodPut, "/_config", `{"clockOffset":"168h"}`); code != http.StatusOK {
		t.Fatalf("PUT /_config: %d %s", code, body)
	}
	if got := s.front.Config().ClockOffset; got != Duration(168*time.Hour) {
		t.Errorf("clockOffset in force %s, want 168h", time.Duration(got))
	}

	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"the deleted key is gone", func() error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: doomed.KeyId})
			return err
		}, "NotFoundException"},
		{"its alias with it", func() error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String("alias/doomed")})
			return err
		}, "NotFoundException"},
		{"the other key stays", func() error {
			_, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: kept.KeyId})
			return err
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); errCode(err) != tt.want {
				t.Errorf("err %v, want %q", err, tt.want)
			}
		})
	}
	keys := must(c.ListKeys(ctx, &kms.ListKeysInput{}))(t).Keys
	if len(keys) != 1 || *keys[0].KeyId != *kept.KeyId {
		t.Errorf("ListKeys = %v, want only %s", keys, *kept.KeyId)
	}
	aliases := must(c.ListAliases(ctx, &kms.ListAliasesInput{}))(t).Aliases
	for _, a := range aliases {
		if *a.AliasName == "alias/doomed" {
			t.Errorf("alias/doomed still listed")
		}
	}

	// Answers are dated by the moved clock, as AWS dates its answers by its own.
	out := must(c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: kept.KeyId}))(t)
	if at, ok := awsmiddleware.GetServerTime(out.ResultMetadata); !ok || at.Sub(time.Now().Add(168*time.Hour)).Abs() > time.Minute {
		t.Errorf("Date of an answer %v (%v), want a week ahead of now", at, ok)
	}

	// Dates written now are the moved clock's.
	next := must(c.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: kept.KeyId, PendingWindowInDays: aws.Int32(7)}))(t)
	if d := next.DeletionDate.Sub(*scheduled.DeletionDate); d < 167*time.Hour || d > 169*time.Hour {
		t.Errorf("deletion dates %v then %v, want a week apart", scheduled.DeletionDate, next.DeletionDate)
	}
	if md := describe(t, c, *kept.KeyId); md.KeyState != types.KeyStatePendingDeletion {
		t.Errorf("kept key %s", md.KeyState)
	}
}

func TestClockOffsetFlag(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{name: "unset"},
		{name: "flag", args: []string{"--clock-offset=720h"}, want: 720 * time.Hour},
		{name: "env", env: map[string]string{"KMS_CLOCK_OFFSET": "1h"}, want: time.Hour},
		{name: "bad", args: []string{"--clock-offset=soon"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			config := ConfigFlags(fs, func(k string) string { return tt.env[k] })
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			cfg, err := config()
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if time.Duration(cfg.ClockOffset) != tt.want {
				t.Errorf("offset %s, want %s", time.Duration(cfg.ClockOffset), tt.want)
			}
		})
	}
}
