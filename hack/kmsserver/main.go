// Command kms-server is a KMS-compatible server for tests and demos: local-kms
// plus the operations and behaviour it lacks (see package front). It listens on
// loopback only and keeps its state in a data directory across restarts.
//
// It serves every account and region from one listener (the region of a
// request is its SigV4 credential scope's, its account its access key's),
// the Resource Groups Tagging API's GetResources, STS's AssumeRole and
// GetCallerIdentity, and Service Quotas' ListServiceQuotas. It can behave like a
// busy AWS account: per-operation request quotas (--quotas, --quota) and
// injected faults (--fault, --fault-seed); and like real, eventually
// consistent AWS (--realistic and one flag per switch). PUT /_config changes
// all of these at run time. GET /_counts reports, per operation, the
// requests, errors, throttled and faulted requests; DELETE /_counts resets
// them. GET /_requests lists the last requests.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/kmsoperator/kms-operator/hack/kmsserver/front"
	"github.com/sirupsen/logrus"
)

func main() {
	listen := flag.String("listen", env("KMS_LISTEN", "127.0.0.1:14599"), "loopback address to listen on (env KMS_LISTEN)")
	dataDir := flag.String("data-dir", env("KMS_DATA_DIR", filepath.Join(os.TempDir(), "kms-server")), "directory holding the keys and grants (env KMS_DATA_DIR)")
	region := flag.String("region", env("KMS_REGION", "us-east-1"), "region of requests without a SigV4 credential scope (env KMS_REGION)")
	accountID := flag.String("account-id", env("KMS_ACCOUNT_ID", "111122223333"), "account of access keys --access-key does not list (env KMS_ACCOUNT_ID)")
	requestsKept := flag.Int("requests-kept", envInt("KMS_REQUESTS_KEPT", front.DefaultRequestsKept), "how many requests GET /_requests can show (env KMS_REQUESTS_KEPT)")
	// A throwaway cluster (make test-e2e-kind) runs the server in a Pod, where
	// it must listen on the Pod's address; everywhere else loopback only.
	inCluster := flag.Bool("in-cluster", envBool("KMS_IN_CLUSTER"), "allow a non-loopback --listen address, for a Pod in a throwaway test cluster (env KMS_IN_CLUSTER)")
	verbose := flag.Bool("verbose", envBool("KMS_VERBOSE"), "log every request (env KMS_VERBOSE)")
	config := front.ConfigFlags(flag.CommandLine, os.Getenv)
	flag.Usage = usage
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(flag.CommandLine.Output(), "unexpected arguments: %v\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	cfg, err := config()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kms-server:", err)
		os.Exit(2)
	}

	if err := run(*listen, *inCluster, front.Options{DataDir: *dataDir, Region: *region, AccountID: *accountID, Config: cfg, RequestsKept: *requestsKept}, *verbose); err != nil {
		log.Fatal(err)
	}
}

func usage() {
	out := flag.CommandLine.Output()
	fmt.Fprint(out, `Usage: kms-server [flags]

A KMS-compatible server for tests and demos (local-kms plus what it lacks),
listening on loopback only. Besides the KMS API at / it serves:

  the Resource Groups Tagging API's GetResources (X-Amz-Target
                     ResourceGroupsTaggingAPI_20170126.GetResources): the
                     request tenant's tagged keys; point the SDK at it with
                     AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API
  GET /_counts       per-operation counts summed over accounts and regions,
                     or those of ?account=A&region=R (either may be left out):
                     {"CreateKey":{"requests":7,"errors":2,"throttled":2,"faulted":0},...}
                     (errors: non-2xx answers and reset connections; throttled:
                     quota rejections and injected throttles; faulted: other
                     injected faults, latency included)
  DELETE /_counts    resets the counts
  GET /_requests     the last requests (?last=N), oldest first: time,
                     operation, account, region, accessKeyId, principal,
                     status, errorCode, userAgent; never bodies
  POST /_principals  {"arn":"arn:aws:iam::111122223333:role/app","createdAgo":"1s"}
                     (or "created":"<RFC3339>") registers an IAM role or user
                     as created then; GET lists them, DELETE forgets them all
  STS (Query protocol: a form POST with Action=AssumeRole or
                     GetCallerIdentity; AWS_ENDPOINT_URL_STS): AssumeRole of
                     the configured roles issues ASIA... keys that act in
                     the role's account until they expire by the server's
                     clock (then ExpiredTokenException / ExpiredToken)
  Service Quotas' ListServiceQuotas (X-Amz-Target
                     ServiceQuotasV20190624.ListServiceQuotas;
                     AWS_ENDPOINT_URL_SERVICE_QUOTAS): the KMS request quotas
                     by AWS's names, valued as the server applies them
  GET /_config       the configuration in force
  PUT /_config       replaces it atomically (quotas start afresh), e.g.
                     {"quotas":"aws","quota":{"CreateKey":10},
                      "faults":[{"op":"CreateKey","kind":"lost","rate":0.2},
                                {"op":"*","kind":"latency","latency":"200ms","rate":0.5}],
                      "seed":1,
                      "consistency":"realistic",
                      "accessKeys":{"AKIDOTHER":"222233334444"},
                      "roles":[{"arn":"arn:aws:iam::222233334444:role/op",
                                "trust":["arn:aws:iam::111122223333:root"],
                                "externalID":"x","maxSessionDuration":"1h"}],
                      "serviceQuotasAccessDenied":["333344445555"],
                      "usageTrackingStart":{"111122223333":"2026-12-01T00:00:00Z"},
                      "clockOffset":"720h"}
                     clockOffset moves the server's clock forward (never
                     back): deletion dates, lags, credential and key
                     material expiry, last usage, and the Date header of
                     every answer (as AWS dates its answers by its clock)

Accounts and regions: every (account, region) has its own keys, grants,
quotas and counts. The region of a request is its SigV4 credential scope's
(--region without one); its account that of its access key in accessKeys
(--access-key), else --account-id. ARNs carry the region's partition
(cn-* aws-cn, us-gov-* aws-us-gov, us-iso-* aws-iso, us-isob-* aws-iso-b,
eu-isoe-* aws-iso-e, us-isof-* aws-iso-f, eusc-* aws-eusc, else aws). A key
ARN of another region answers NotFoundException, of another account
AccessDeniedException.

Quotas are token buckets of N requests per second per account and region,
refilled each second, answering 400 ThrottlingException "Rate exceeded"
like AWS. Fault kinds: throttle (400 ThrottlingException), internal (500
KMSInternalException), timeout (503 DependencyTimeoutException),
latency=<duration> (served late), reset (connection closed without an
answer), lost (served, then answered 500 KMSInternalException); the
tagging API answers ThrottledException and InternalServiceException.

Eventual consistency ("consistency": a preset name "realistic" or "off",
or an object whose optional "preset" the other fields override; all off by
default; GET /_config shows the values in force):
  keyListLag         ListKeys omits keys created less than this ago
  tagLag             ListResourceTags shows tags as they were this long ago
  taggingAPILag      GetResources shows keys and tags as they were this long ago
  grantListLag       ListGrants/ListRetirableGrants omit grants created, and
                     still list grants revoked or retired, less than this ago
  staleAfterWrite    after CreateKey, EnableKey, DisableKey, CancelKeyDeletion,
                     ScheduleKeyDeletion, operations on the key but DescribeKey
                     see its previous state this long (NotFoundException after
                     CreateKey, KMSInvalidStateException after CancelKeyDeletion...)
  principalIDWindow  ListGrants shows roles/users created less than this ago
                     as their unique ids (AROA.../AIDA...)
  freshPrincipalWindow  CreateGrant naming a role/user created less than this
                     ago: InvalidArnException; a key policy naming one:
                     MalformedPolicyDocumentException
  principalsCreatedOnFirstUse  a role/user first seen counts as created then
  replicaCreation    a replica stays Creating this long after ReplicateKey
  primaryRegionUpdate  both keys stay Updating this long after
                     UpdatePrimaryRegion
realistic is {"keyListLag":"3s","tagLag":"3s","taggingAPILag":"5s",
"grantListLag":"3s","staleAfterWrite":"2s","principalIDWindow":"10s",
"freshPrincipalWindow":"2s","principalsCreatedOnFirstUse":true} (the two
multi-Region switches stay off).

Limits: 50 tags per key (TagException), tag keys of 1-128 and values of up
to 256 characters (ValidationException), no aws: prefix (TagException).
Multi-Region keys: CreateKey MultiRegion gives mrk- ids; ReplicateKey makes
replicas in other regions that decrypt each other's ciphertexts; a primary
key scheduled for deletion waits in PendingReplicaDeletion for its replicas;
UpdatePrimaryRegion swaps primary and replica; replicas share the primary's
rotation. Grants may name service principals (with a SourceArn constraint).
GetKeyLastUsage reports each key's last cryptographic use. EXTERNAL
symmetric keys take imported material with ids, new material pending
rotation, RotateKeyOnDemand to it, per-material deletion and expiry; EXTERNAL
HMAC, RSA and NIST ECC keys take one material (DER PKCS #8 private keys,
RSA ones wrapped with RSA_AES_KEY_WRAP_*), re-importable but never changed.

Flags:
`)
	flag.PrintDefaults()
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envBool(name string) bool {
	v, _ := strconv.ParseBool(os.Getenv(name))
	return v
}

func run(listen string, inCluster bool, opts front.Options, verbose bool) error {
	if err := checkLoopback(listen); err != nil && !inCluster {
		return err
	}
	if verbose {
		opts.Logger = logrus.New()
	}
	f, err := front.New(opts)
	if err != nil {
		return err
	}
	defer f.Close()

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: f, ReadHeaderTimeout: 10 * time.Second}
	log.Printf("kms-server listening on http://%s (data %s, default region %s, default account %s)", ln.Addr(), opts.DataDir, opts.Region, opts.AccountID)
	if cfg := f.Config(); cfg.Quotas != front.QuotasNone || len(cfg.Quota) > 0 || len(cfg.Faults) > 0 ||
		cfg.Consistency != (front.Consistency{}) || len(cfg.AccessKeys) > 0 || len(cfg.Roles) > 0 ||
		cfg.ClockOffset != 0 || len(cfg.ServiceQuotasAccessDenied) > 0 || len(cfg.UsageTrackingStart) > 0 {
		b, _ := json.Marshal(cfg)
		log.Printf("kms-server configuration: %s", b)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Print("kms-server stopped")
	return nil
}

// checkLoopback refuses addresses that would expose the server beyond this
// machine: it has no authentication.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("listen address %q is not a loopback address", addr)
	}
	return nil
}
