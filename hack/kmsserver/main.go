// Command kms-server is a KMS-compatible server for tests and demos: local-kms
// plus the operations and behaviour it lacks (see package front). It listens on
// loopback only and keeps its state in a data directory across restarts.
package main

import (
	"context"
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
	verbose := flag.Bool("verbose", envBool("KMS_VERBOSE"), "log every request (env KMS_VERBOSE)")
	flag.Parse()

	if err := run(*listen, front.Options{DataDir: *dataDir, Region: *region, AccountID: *accountID}, *verbose); err != nil {
		log.Fatal(err)
	}
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

func run(listen string, opts front.Options, verbose bool) error {
	if err := checkLoopback(listen); err != nil {
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
