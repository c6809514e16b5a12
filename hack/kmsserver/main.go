// Command kms-server is a KMS-compatible server for tests and demos: local-kms
// plus the operations and behaviour it lacks (see package front). It listens on
// loopback only and keeps its state in a data directory across restarts.
//
// It can behave like a busy AWS account: per-operation request quotas
// (--quotas, --quota) and injected faults (--fault, --fault-seed), which
// PUT /_config changes at run time. GET /_counts reports, per operation, the
// requests, errors, throttled and faulted requests; DELETE /_counts resets
// them.
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
	region := flag.String("region", env("KMS_REGION", "us-east-1"), "AWS region in key ARNs (env KMS_REGION)")
	accountID := flag.String("account-id", env("KMS_ACCOUNT_ID", "111122223333"), "AWS account id in key ARNs (env KMS_ACCOUNT_ID)")
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

	if err := run(*listen, *inCluster, front.Options{DataDir: *dataDir, Region: *region, AccountID: *accountID, Config: cfg}, *verbose); err != nil {
		log.Fatal(err)
	}
}

func usage() {
	out := flag.CommandLine.Output()
	fmt.Fprint(out, `Usage: kms-server [flags]

A KMS-compatible server for tests and demos (local-kms plus what it lacks),
listening on loopback only. Besides the KMS API at / it serves:

  GET /_counts       per-operation counts:
                     {"CreateKey":{"requests":7,"errors":2,"throttled":2,"faulted":0},...}
                     (errors: non-2xx answers and reset connections; throttled:
                     quota rejections and injected throttles; faulted: other
                     injected faults, latency included)
  DELETE /_counts    resets the counts
  GET /_config       the quota and fault configuration in force
  PUT /_config       replaces it atomically (quotas start afresh), e.g.
                     {"quotas":"aws","quota":{"CreateKey":10},
                      "faults":[{"op":"CreateKey","kind":"lost","rate":0.2},
                                {"op":"*","kind":"latency","latency":"200ms","rate":0.5}],
                      "seed":1}

Quotas are token buckets of N requests per second, refilled each second,
answering 400 ThrottlingException "Rate exceeded" like AWS. Fault kinds:
throttle (400 ThrottlingException), internal (500 KMSInternalException),
timeout (503 DependencyTimeoutException), latency=<duration> (served late),
reset (connection closed without an answer), lost (served, then answered
500 KMSInternalException).

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
	log.Printf("kms-server listening on http://%s (data %s, region %s, account %s)", ln.Addr(), opts.DataDir, opts.Region, opts.AccountID)
	if cfg := f.Config(); cfg.Quotas != front.QuotasNone || len(cfg.Quota) > 0 || len(cfg.Faults) > 0 {
		b, _ := json.Marshal(cfg)
		log.Printf("kms-server quotas and faults: %s", b)
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
