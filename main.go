// Command kms-operator reconciles Key, Alias and Grant objects with AWS KMS.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/controllers"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(kmsv1alpha1.AddToScheme(scheme))
}

// config is the operator's command line. The flag names are a public contract
// (README, Helm chart, Deployment).
type config struct {
	region, kmsEndpoint         string
	taggingEndpoint             string
	consistencyWindow           time.Duration
	syncPeriod                  time.Duration
	maxConcurrentReconciles     int
	watchNamespaces             string
	clusterName                 string
	allowAdoption               bool
	allowUnmanagedKeyReferences bool
	readKeyLastUsage            bool
	leaderElect                 bool
	leaderElectionNamespace     string
	metricsAddr, probeAddr      string
	kubeQPS                     float64
	kubeBurst                   int
	quotaShare                  float64
	serviceQuotas               bool
	pprofAddr                   string
	quotas                      map[string]float64
}

func main() {
	var c config
	flag.StringVar(&c.region, "region", "", "Default AWS region for KMS (default: the AWS configuration chain, e.g. AWS_REGION).")
	flag.StringVar(&c.kmsEndpoint, "kms-endpoint", "", "KMS endpoint URL (default: the AWS configuration chain, e.g. AWS_ENDPOINT_URL_KMS, else AWS's public endpoint).")
	flag.StringVar(&c.taggingEndpoint, "tagging-endpoint", "", "Resource Groups Tagging API endpoint URL, which finds keys by their ownership tags (default: the AWS configuration chain, e.g. AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API).")
	flag.DurationVar(&c.consistencyWindow, "kms-consistency-window", controllers.DefaultConsistencyWindow, "How long KMS's answers may lag behind the operator's own writes (KMS is eventually consistent): a key or grant not found, or a principal not known, within it is waited for, not believed.")
	flag.DurationVar(&c.syncPeriod, "sync-period", 10*time.Minute, "How often each object is re-observed in KMS to correct drift (with 10% jitter).")
	flag.IntVar(&c.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "Reconciles run in parallel per kind.")
	flag.StringVar(&c.watchNamespaces, "watch-namespaces", "", "Comma-separated namespaces to watch (default: all).")
	flag.StringVar(&c.clusterName, "cluster-name", "", "Name of this cluster, unique among the clusters sharing an AWS account, written into the ownership tags of the keys it creates (required).")
	flag.BoolVar(&c.allowAdoption, "allow-adoption", false, "Allow Key objects to adopt existing KMS keys through spec.keyID.")
	flag.BoolVar(&c.allowUnmanagedKeyReferences, "allow-unmanaged-key-references", false, "Allow Alias and Grant objects to reference, by raw key id, keys the operator does not own.")
	flag.BoolVar(&c.readKeyLastUsage, "read-key-last-usage", false, "Show each Key's last cryptographic use in status.lastUsage, read with one GetKeyLastUsage call per key per sync period (Keys with spec.deletionProtection.unusedForDays read it anyway).")
	flag.BoolVar(&c.leaderElect, "leader-elect", false, "Elect a leader so that only one replica reconciles at a time.")
	flag.StringVar(&c.leaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election lease (default: the Pod's namespace).")
	flag.StringVar(&c.metricsAddr, "metrics-bind-address", ":8080", "Address of the Prometheus metrics endpoint; 0 turns it off.")
	flag.StringVar(&c.probeAddr, "health-probe-bind-address", ":8081", "Address of the /healthz and /readyz endpoints.")
	flag.Float64Var(&c.kubeQPS, "kube-api-qps", 0, "Client-side limit of requests per second to the Kubernetes API server; 0 leaves it to the API server's priority and fairness (each new Key costs two writes and one event).")
	flag.IntVar(&c.kubeBurst, "kube-api-burst", 0, "Burst of requests to the Kubernetes API server with --kube-api-qps; 0 is twice the QPS.")
	flag.Float64Var(&c.quotaShare, "kms-quota-share", 0.8, "Share of the account's KMS request quotas the operator paces itself to (0 turns pacing off); the rest is left to other clients of the account.")
	flag.BoolVar(&c.serviceQuotas, "kms-quotas-from-service-quotas", true, "Read the account's applied KMS request quotas (raised or not) from Service Quotas at start and hourly, per region; when that is denied, AWS's default quotas are used.")
	flag.StringVar(&c.pprofAddr, "pprof-bind-address", "", "Address of the pprof endpoints (/debug/pprof/); empty turns them off.")
	c.quotas = map[string]float64{}
	flag.Func("kms-quota", "Requests per second for one KMS operation, e.g. CreateKey=20 for an account whose quota was raised; repeatable; overrides --kms-quota-share for that operation.", func(v string) error {
		op, n, ok := strings.Cut(v, "=")
		rps, err := strconv.ParseFloat(n, 64)
		if !ok || err != nil || rps < 0 {
			return fmt.Errorf("want Operation=requests-per-second, got %q", v)
		}
		c.quotas[op] = rps
		return nil
	})
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))

	if err := run(ctrl.SetupSignalHandler(), c); err != nil {
		ctrl.Log.Error(err, "operator stopped")
		os.Exit(1)
	}
}

func run(ctx context.Context, c config) error {
	log := ctrl.Log.WithName("setup")
	if limit := setMemoryLimit(os.Getenv("MEMORY_LIMIT")); limit > 0 {
		log.Info("soft memory limit set from the container's limit", "bytes", limit)
	}
	setGCPercent(os.Getenv("GOGC"))
	if c.clusterName == "" {
		// Two clusters sharing a default name would share ownership of each
		// other's keys: it must be chosen.
		return fmt.Errorf("--cluster-name is required: a name unique among the clusters that share this AWS account")
	}
	// The cache holds every watched object: it keeps what the controllers
	// read, without managedFields and the last-applied annotation, which
	// can be the largest part of a small object.
	cacheOpts := cache.Options{DefaultTransform: slimObject}
	if ns := splitList(c.watchNamespaces); len(ns) > 0 {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{}
		for _, n := range ns {
			cacheOpts.DefaultNamespaces[n] = cache.Config{}
		}
	}
	restConfig, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("kubeconfig: %w", err)
	}
	// controller-runtime's default of 20 QPS would cap creation at ten keys
	// a second, below what KMS allows an account with raised quotas.
	restConfig.QPS, restConfig.Burst = kubeRate(c.kubeQPS, c.kubeBurst)
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                  scheme,
		Cache:                   cacheOpts,
		Metrics:                 metricsserver.Options{BindAddress: c.metricsAddr},
		PprofBindAddress:        c.pprofAddr,
		HealthProbeBindAddress:  c.probeAddr,
		LeaderElection:          c.leaderElect,
		LeaderElectionID:        "kms-operator.kms.kmsoperator.io",
		LeaderElectionNamespace: c.leaderElectionNamespace,
		// A new leader must not wait for the old one's lease to run out when
		// the old one stops cleanly.
		LeaderElectionReleaseOnCancel: true,
		// The lease is released only after the reconcilers have drained. The
		// Pod's terminationGracePeriodSeconds is 10 (chart and kustomize):
		// draining for longer gets the process killed before the release, and
		// the standby then waits a whole lease after the last renewal (25 s
		// was seen in test-cluster). A reconcile cut short is retried by the
		// next leader; a CreateKey in flight is covered by the create-started
		// annotation. 5 s leaves half the grace period for the release.
		GracefulShutdownTimeout: ptr.To(5 * time.Second),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}

	provider, err := kmsclient.NewProvider(ctx, kmsclient.ProviderOptions{
		Region:          c.region,
		Endpoint:        c.kmsEndpoint,
		TaggingEndpoint: c.taggingEndpoint,
		Registerer:      metrics.Registry,
		Pacing:          kmsclient.Pacing{Share: c.quotaShare, Overrides: c.quotas, FromServiceQuotas: c.serviceQuotas},
		Log:             ctrl.Log.WithName("kms"),
	})
	if err != nil {
		return fmt.Errorf("kms client: %w", err)
	}
	// Reads the account's quotas again every hour.
	if err := mgr.Add(provider); err != nil {
		return err
	}

	opts := controllers.Options{
		KMS:                         provider,
		Accounts:                    provider,
		SyncPeriod:                  c.syncPeriod,
		MaxConcurrentReconciles:     c.maxConcurrentReconciles,
		ClusterName:                 c.clusterName,
		AllowAdoption:               c.allowAdoption,
		AllowUnmanagedKeyReferences: c.allowUnmanagedKeyReferences,
		ConsistencyWindow:           c.consistencyWindow,
		ReadKeyLastUsage:            c.readKeyLastUsage,
		WatchNamespaces:             splitList(c.watchNamespaces),
	}
	if err := controllers.SetupAll(mgr, opts); err != nil {
		return err
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return err
	}
	log.Info("starting", "region", c.region, "syncPeriod", c.syncPeriod, "watchNamespaces", c.watchNamespaces,
		"clusterName", c.clusterName, "allowAdoption", c.allowAdoption,
		"allowUnmanagedKeyReferences", c.allowUnmanagedKeyReferences, "kmsConsistencyWindow", c.consistencyWindow)
	return mgr.Start(ctx)
}

// defaultGCPercent is the operator's GOGC unless the environment sets one.
// Almost all of its heap is the informer cache, which lives as long as the
// process: Go's default of 100 lets the heap grow to twice that before a
// collection, 50 to one and a half times. Measured with make bench at 10,000
// Keys: peak RSS 157 MiB at 100, 116 MiB at 50, for 16% more CPU.
const defaultGCPercent = 50

// setGCPercent sets the garbage collector's target, unless GOGC (gogc) is
// set; it returns the target set, 0 for none.
func setGCPercent(gogc string) int {
	if gogc != "" {
		return 0
	}
	debug.SetGCPercent(defaultGCPercent)
	return defaultGCPercent
}

// setMemoryLimit makes the garbage collector work harder as the heap nears
// 90% of the container's memory limit (MEMORY_LIMIT in bytes, from the
// downward API in the chart and config/manager), so it runs before the kernel
// kills the Pod. An explicit GOMEMLIMIT wins. It returns the limit set, or 0.
func setMemoryLimit(containerLimit string) int64 {
	limit, err := strconv.ParseInt(containerLimit, 10, 64)
	if err != nil || limit <= 0 || os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	soft := limit / 10 * 9
	debug.SetMemoryLimit(soft)
	return soft
}

// kubeRate is the client-side rate limit to the API server: none by default
// (QPS -1), so that creating keys is bounded by the API server's priority and
// fairness, not by a low cap in every client; a QPS given on the command line
// is taken with its burst (twice the QPS when 0).
func kubeRate(qps float64, burst int) (float32, int) {
	if qps <= 0 {
		return -1, 0
	}
	if burst <= 0 {
		burst = int(2 * qps)
	}
	return float32(qps), burst
}

// slimObject drops from cached objects what the operator never reads, and
// shares the strings many objects repeat.
func slimObject(obj any) (any, error) {
	if o, ok := obj.(metav1.Object); ok {
		o.SetManagedFields(nil)
		if a := o.GetAnnotations(); a[corev1.LastAppliedConfigAnnotation] != "" {
			delete(a, corev1.LastAppliedConfigAnnotation)
			o.SetAnnotations(a)
		}
	}
	if k, ok := obj.(*kmsv1alpha1.Key); ok {
		internKey(k)
	}
	return obj, nil
}

// internKey makes a cached Key share the strings other Keys repeat: a
// platform team's keys mostly carry the same policy, tag keys and values,
// and every Key the same condition reasons and messages. Decoded from JSON,
// each object holds its own copy; ten thousand copies of a policy are
// megabytes of the cache.
func internKey(k *kmsv1alpha1.Key) {
	k.Spec.Policy = intern(k.Spec.Policy)
	k.Spec.Description = intern(k.Spec.Description)
	if len(k.Spec.Tags) > 0 {
		tags := make(map[string]string, len(k.Spec.Tags))
		for key, v := range k.Spec.Tags {
			tags[intern(key)] = intern(v)
		}
		k.Spec.Tags = tags
	}
	k.Status.KeyState = intern(k.Status.KeyState)
	for i := range k.Status.Conditions {
		c := &k.Status.Conditions[i]
		c.Type, c.Reason, c.Message = intern(c.Type), intern(c.Reason), intern(c.Message)
	}
}

// interned are the strings shared so far, at most maxInterned of them: values
// that differ from Key to Key (a message naming a key id) would otherwise
// make it grow with every Key ever seen.
var interned = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

const maxInterned = 4096

// intern returns the shared copy of s, or s.
func intern(s string) string {
	if s == "" {
		return s
	}
	interned.Lock()
	defer interned.Unlock()
	if c, ok := interned.m[s]; ok {
		return c
	}
	if len(interned.m) < maxInterned {
		interned.m[s] = s
	}
	return s
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
