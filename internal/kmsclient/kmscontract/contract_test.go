package kmscontract_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmscontract"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmsfake"
)

func TestFake(t *testing.T) {
	kmscontract.Run(t, func(*testing.T) kmsclient.API { return kmsfake.NewFake() })
	kmscontract.RunRegions(t, func(*testing.T) kmsclient.Provider { return kmsfake.NewFakeProvider() })
}

// TestKMSServer runs the contract against the project's KMS server through
// the real SDK client. The server is the binary in KMS_SERVER_BIN (make
// test-unit passes bin/kms-server), else built from hack/kmsserver.
func TestKMSServer(t *testing.T) {
	endpoint := startKMSServer(t)
	t.Setenv("AWS_ACCESS_KEY_ID", "contract")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "contract")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	p, err := kmsclient.NewProvider(context.Background(), kmsclient.ProviderOptions{Region: "us-east-1", Endpoint: endpoint, TaggingEndpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	api, err := p.For("", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithBaseEndpoint(endpoint))
	if err != nil {
		t.Fatal(err)
	}
	server := serverModel{API: api, kms: kms.NewFromConfig(cfg)}
	kmscontract.Run(t, func(*testing.T) kmsclient.API { return server })
	kmscontract.RunRegions(t, func(*testing.T) kmsclient.Provider { return p })
}

// serverModel is the KMS server through the operator's client, plus the
// cryptographic calls an application makes (kmscontract.KeyUser), through
// the SDK.
type serverModel struct {
	kmsclient.API
	kms *kms.Client
}

func (m serverModel) UseKey(ctx context.Context, keyID, op string) error {
	var err error
	switch op {
	case "Encrypt":
		_, err = m.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: &keyID, Plaintext: []byte("contract")})
	case "GenerateDataKey":
		_, err = m.kms.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: &keyID, NumberOfBytes: aws.Int32(32)})
	default:
		return fmt.Errorf("UseKey: %s is not one of the operations the contract uses", op)
	}
	// Classified as the operator's client classifies KMS's answers.
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return kmsclient.CodeError(op, apiErr.ErrorCode(), apiErr.ErrorMessage())
	}
	return err
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

// startKMSServer starts a KMS server on a free loopback port with its own
// data directory and returns its URL; it is stopped when the test ends.
func startKMSServer(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("KMS_SERVER_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "kms-server")
		build := exec.Command("go", "build", "-o", bin, ".")
		build.Dir = filepath.Join("..", "..", "..", "hack", "kmsserver")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building the KMS server: %v\n%s", err, out)
		}
	}
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir(), "--region", "us-east-1", "--account-id", "111122223333")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	found := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stderr)
		for s.Scan() {
			if m := listening.FindStringSubmatch(s.Text()); m != nil {
				found <- m[1]
			}
		}
	}()
	select {
	case url := <-found:
		return url
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not say where it listens within 30s", bin)
		return ""
	}
}
