package front

// Request quotas and fault injection: they make the server behave like a busy
// AWS account. The configuration comes from flags at start (see ConfigFlags)
// and can be replaced at run time with PUT /_config.

import (
	"cmp"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nsmithuk/local-kms/src/handler"
)

// awsQuotas are AWS KMS's default request quotas, in requests per second per
// account and region, from the AWS KMS Developer Guide, "Request quotas"
// (https://docs.aws.amazon.com/kms/latest/developerguide/requests-per-second.html).
// AWS applies each over a 1-second window, and raises most on request. Where
// the default varies (CreateKey by key type, the cryptographic operations by
// region: 5,500, 10,000 or 50,000) this is the smallest common value.
var awsQuotas = map[string]int{
	// Management operations that write.
	"CreateKey":            5,
	"CreateAlias":          5,
	"UpdateAlias":          5,
	"DeleteAlias":          5,
	"EnableKey":            5,
	"DisableKey":           5,
	"EnableKeyRotation":    5,
	"DisableKeyRotation":   5,
	"RotateKeyOnDemand":    5,
	"PutKeyPolicy":         5,
	"TagResource":          5,
	"UntagResource":        5,
	"UpdateKeyDescription": 5,
	"ScheduleKeyDeletion":  5,
	"CancelKeyDeletion":    5,
	"CreateGrant":          50,
	"RetireGrant":          30,
	"RevokeGrant":          30,
	// Reads.
	"DescribeKey":          2000,
	"GetPublicKey":         2000,
	"GetKeyPolicy":         1000,
	"GetKeyRotationStatus": 1000,
	"ListResourceTags":     2000,
	"ListAliases":          500,
	"ListGrants":           100,
	"ListRetirableGrants":  100,
	"ListKeys":             500,
	"ListKeyPolicies":      100,
	"ListKeyRotations":     100,
	// Operations of phase 2, at the defaults of the table's current version.
	"GetKeyLastUsage":           5,
	"GetParametersForImport":    1,
	"ImportKeyMaterial":         15,
	"DeleteImportedKeyMaterial": 15,
	"ReplicateKey":              5,
	"UpdatePrimaryRegion":       5,
	// The cryptographic operations share one quota: cryptoQuota.
	cryptoQuota: 5500,
}

// cryptoQuota names the quota the cryptographic operations share in AWS
// ("Cryptographic operations (symmetric) request rate"). Setting it with
// --quota Cryptographic=N changes the shared quota; setting one of cryptoOps
// gives that operation a quota of its own.
const cryptoQuota = "Cryptographic"

var cryptoOps = []string{
	"Encrypt", "Decrypt", "ReEncrypt",
	"GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
	"GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext",
	"Sign", "Verify", "GenerateMac", "VerifyMac", "GenerateRandom",
}

// Quota settings.
const (
	QuotasNone = "none"
	QuotasAWS  = "aws"
)

// Fault kinds.
const (
	FaultThrottle = "throttle" // 400 ThrottlingException, as over quota
	FaultInternal = "internal" // 500 KMSInternalException
	FaultTimeout  = "timeout"  // 503 DependencyTimeoutException
	FaultLatency  = "latency"  // the request is served after a delay
	FaultReset    = "reset"    // the connection is closed without an answer
	FaultLost     = "lost"     // the request is served, then 500 KMSInternalException
)

// AllOps in a Fault's Op applies it to every operation.
const AllOps = "*"

// Config is the quota and fault injection configuration, in the JSON form of
// GET and PUT /_config.
type Config struct {
	// Quotas is QuotasAWS for AWS's default quotas, or QuotasNone (or empty)
	// for none.
	Quotas string `json:"quotas"`
	// Quota sets the quota of an operation (or of cryptoQuota), in requests
	// per second, over Quotas; 0 removes it.
	Quota map[string]int `json:"quota,omitempty"`
	// Faults are injected at random; an operation's own faults and the AllOps
	// ones add up (the first drawn wins, latency apart, which adds to them).
	Faults []Fault `json:"faults,omitempty"`
	// Seed seeds the random draws; 0 picks a seed, which GET /_config shows.
	Seed uint64 `json:"seed,omitempty"`
	// Consistency models real AWS's eventual consistency; off by default.
	Consistency Consistency `json:"consistency"`
	// AccessKeys maps extra access key ids to the account they sign for
	// (as its root user); other keys sign for the default account.
	AccessKeys map[string]string `json:"accessKeys,omitempty"`
	// ClockOffset moves the server's clock forward: lags, windows, deletion
	// dates, credential and key material expiry, last usage.
	ClockOffset Duration `json:"clockOffset,omitempty"`
	// Roles are the IAM roles STS AssumeRole can assume.
	Roles []Role `json:"roles,omitempty"`
	// ServiceQuotasAccessDenied lists accounts whose ListServiceQuotas
	// answers AccessDeniedException.
	ServiceQuotasAccessDenied []string `json:"serviceQuotasAccessDenied,omitempty"`
	// UsageTrackingStart sets, per account, when KMS began recording the
	// keys' last usage (GetKeyLastUsage); defaultTrackingStart otherwise.
	UsageTrackingStart map[string]time.Time `json:"usageTrackingStart,omitempty"`
}

// Fault injects one kind of fault into a share of an operation's requests.
type Fault struct {
	// Op is an operation name or AllOps.
	Op   string `json:"op"`
	Kind string `json:"kind"`
	// Latency is the delay of FaultLatency; the kind may also be written
	// "latency=200ms".
	Latency Duration `json:"latency,omitempty"`
	// Rate is the probability, 0 to 1, that a request gets the fault.
	Rate float64 `json:"rate"`
}

// Duration is a time.Duration written as a string such as "200ms" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("duration must be a string such as \"200ms\": %s", b)
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// ParseQuota parses the --quota flag syntax: Op=N.
func ParseQuota(s string) (op string, n int, err error) {
	op, v, ok := strings.Cut(s, "=")
	if ok {
		n, err = strconv.Atoi(v)
	}
	if !ok || op == "" || err != nil || n < 0 {
		return "", 0, fmt.Errorf("quota %q: want Op=N with N >= 0 requests per second", s)
	}
	return op, n, nil
}

// ParseFault parses the --fault flag syntax: Op=kind[:rate], where Op may be
// AllOps, kind latency is written latency=<duration>, and rate defaults to 1.
func ParseFault(s string) (Fault, error) {
	op, rest, ok := strings.Cut(s, "=")
	if !ok || op == "" {
		return Fault{}, fmt.Errorf("fault %q: want Op=kind:rate", s)
	}
	ft := Fault{Op: op, Kind: rest, Rate: 1}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		r, err := strconv.ParseFloat(rest[i+1:], 64)
		if err != nil {
			return Fault{}, fmt.Errorf("fault %q: bad rate: %w", s, err)
		}
		ft.Kind, ft.Rate = rest[:i], r
	}
	if err := ft.normalize(); err != nil {
		return Fault{}, fmt.Errorf("fault %q: %w", s, err)
	}
	return ft, nil
}

// normalize splits "latency=<duration>" and checks the kind and rate.
func (ft *Fault) normalize() error {
	if k, d, ok := strings.Cut(ft.Kind, "="); ok && k == FaultLatency {
		v, err := time.ParseDuration(d)
		if err != nil {
			return err
		}
		ft.Kind, ft.Latency = k, Duration(v)
	}
	switch ft.Kind {
	case FaultLatency:
		if ft.Latency <= 0 {
			return errors.New("latency needs a positive duration: latency=200ms")
		}
	case FaultThrottle, FaultInternal, FaultTimeout, FaultReset, FaultLost:
		if ft.Latency != 0 {
			return fmt.Errorf("latency given for kind %s", ft.Kind)
		}
	default:
		return fmt.Errorf("unknown kind %q (want throttle, internal, timeout, latency=<duration>, reset or lost)", ft.Kind)
	}
	if !(ft.Rate >= 0 && ft.Rate <= 1) {
		return fmt.Errorf("rate %v is not between 0 and 1", ft.Rate)
	}
	return nil
}

// ConfigFlags defines --quotas, --quota, --fault and --fault-seed on fs, with
// defaults from the environment (KMS_QUOTAS, KMS_QUOTA, KMS_FAULTS,
// KMS_FAULT_SEED; the lists separated by commas or spaces; a flag given
// replaces its variable). After fs.Parse, the returned function gives the
// Config.
func ConfigFlags(fs *flag.FlagSet, getenv func(string) string) func() (Config, error) {
	quotas := fs.String("quotas", cmp.Or(getenv("KMS_QUOTAS"), QuotasNone),
		"request quotas: aws (AWS's default per-operation quotas) or none (env KMS_QUOTAS)")
	quota := &listFlag{env: getenv("KMS_QUOTA")}
	fs.Var(quota, "quota", "`Op=N`: quota of an operation in requests per second, over --quotas; 0 removes it;\n"+
		"Cryptographic=N sets the quota the cryptographic operations share; repeatable (env KMS_QUOTA, comma-separated)")
	faults := &listFlag{env: getenv("KMS_FAULTS")}
	fs.Var(faults, "fault", "`Op=kind:rate`: inject a fault into a share (0 to 1) of Op's requests, Op * for all;\n"+
		"kinds throttle, internal, timeout, latency=<duration>, reset, lost; repeatable (env KMS_FAULTS, comma-separated)")
	seed := fs.String("fault-seed", getenv("KMS_FAULT_SEED"), "seed of the fault draws; empty or 0 for a random one (env KMS_FAULT_SEED)")
	consistency := consistencyFlags(fs, getenv)
	accessKeys := &listFlag{env: getenv("KMS_ACCESS_KEYS")}
	fs.Var(accessKeys, "access-key", "`AKID=ACCOUNT`: requests signed with access key AKID are account ACCOUNT's root;\n"+
		"other keys sign for --account-id; repeatable (env KMS_ACCESS_KEYS, comma-separated)")
	roles := fs.String("roles", getenv("KMS_ROLES"), "IAM roles STS AssumeRole can assume, a JSON array:\n"+
		`[{"arn":"arn:aws:iam::222233334444:role/op","trust":["arn:aws:iam::111122223333:root"],"externalID":"x","maxSessionDuration":"1h"}]`+
		" (env KMS_ROLES)")
	quotasDenied := &listFlag{env: getenv("KMS_SERVICE_QUOTAS_ACCESS_DENIED")}
	fs.Var(quotasDenied, "service-quotas-access-denied", "`ACCOUNT` whose ListServiceQuotas answers AccessDeniedException;\n"+
		"repeatable (env KMS_SERVICE_QUOTAS_ACCESS_DENIED, comma-separated)")
	trackingStart := &listFlag{env: getenv("KMS_USAGE_TRACKING_START")}
	fs.Var(trackingStart, "usage-tracking-start", "`ACCOUNT=RFC3339`: when KMS began recording the account's key usage (GetKeyLastUsage);\n"+
		"repeatable (env KMS_USAGE_TRACKING_START, comma-separated)")
	clockOffset := fs.String("clock-offset", getenv("KMS_CLOCK_OFFSET"), "move the server's clock forward by this `duration` (env KMS_CLOCK_OFFSET)")
	return func() (Config, error) {
		var err error
		cfg := Config{Quotas: *quotas}
		if denied := quotasDenied.values(); len(denied) > 0 {
			cfg.ServiceQuotasAccessDenied = denied
		}
		for _, v := range trackingStart.values() {
			account, at, ok := strings.Cut(v, "=")
			when, err := time.Parse(time.RFC3339, at)
			if !ok || err != nil {
				return Config{}, fmt.Errorf("usage tracking start %q: want ACCOUNT=<RFC3339 time>", v)
			}
			if cfg.UsageTrackingStart == nil {
				cfg.UsageTrackingStart = map[string]time.Time{}
			}
			cfg.UsageTrackingStart[account] = when
		}
		if *roles != "" {
			if err := json.Unmarshal([]byte(*roles), &cfg.Roles); err != nil {
				return Config{}, fmt.Errorf("roles: %w", err)
			}
		}
		if *clockOffset != "" {
			d, err := time.ParseDuration(*clockOffset)
			if err != nil {
				return Config{}, fmt.Errorf("clock offset: %w", err)
			}
			cfg.ClockOffset = Duration(d)
		}
		if cfg.Consistency, err = consistency(); err != nil {
			return Config{}, err
		}
		for _, s := range accessKeys.values() {
			key, account, ok := strings.Cut(s, "=")
			if !ok || key == "" {
				return Config{}, fmt.Errorf("access key %q: want AKID=ACCOUNT", s)
			}
			if cfg.AccessKeys == nil {
				cfg.AccessKeys = map[string]string{}
			}
			cfg.AccessKeys[key] = account
		}
		for _, s := range quota.values() {
			op, n, err := ParseQuota(s)
			if err != nil {
				return Config{}, err
			}
			if cfg.Quota == nil {
				cfg.Quota = map[string]int{}
			}
			cfg.Quota[op] = n
		}
		for _, s := range faults.values() {
			ft, err := ParseFault(s)
			if err != nil {
				return Config{}, err
			}
			cfg.Faults = append(cfg.Faults, ft)
		}
		if *seed != "" {
			v, err := strconv.ParseUint(*seed, 10, 64)
			if err != nil {
				return Config{}, fmt.Errorf("fault seed %q: %w", *seed, err)
			}
			cfg.Seed = v
		}
		return cfg, nil
	}
}

// listFlag is a repeatable flag whose default is a list in an environment
// variable.
type listFlag struct {
	env string
	set []string
	ok  bool
}

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(l.values(), ",")
}

func (l *listFlag) Set(s string) error {
	l.set, l.ok = append(l.set, s), true
	return nil
}

func (l *listFlag) values() []string {
	if l.ok {
		return l.set
	}
	return strings.FieldsFunc(l.env, func(r rune) bool { return r == ',' || r == ' ' })
}

// policy is a Config compiled for the request path. Its configuration never
// changes: SetConfig swaps in a new one. Its buckets fill as tenants make
// requests.
type policy struct {
	cfg Config
	// ops holds the operations with a quota or faults of their own; any
	// (nil for none) applies to the others.
	ops map[string]*opPolicy
	any *opPolicy
	mu  sync.Mutex
	rng *rand.Rand
	// buckets are the quotas' token buckets by tenant, then by operation
	// (or cryptoQuota): AWS's quotas are per account and region.
	bucketsMu sync.Mutex
	buckets   map[string]map[string]*bucket
}

type opPolicy struct {
	quota  int    // requests per second, 0 for none
	bucket string // the bucket it draws from: the operation or cryptoQuota
	faults []Fault
	delays []Fault // FaultLatency
}

// action is what happens to one request besides being served.
type action struct {
	kind  string // "" or a fault kind other than FaultLatency
	delay time.Duration
}

// knownOp reports whether the server implements op or AWS has a quota for it.
func (f *Front) knownOp(op string) bool {
	_, q := awsQuotas[op]
	_, l := f.ops[op]
	_, h := f.handled[op]
	_, g := f.tagging[op]
	return q || l || h || g || stsActions[op] || op == "ListServiceQuotas" || slices.Contains(cryptoOps, op)
}

// compile checks cfg and builds its policy; cfg is normalized in place.
func (f *Front) compile(cfg *Config) (*policy, error) {
	if err := f.normalize(cfg); err != nil {
		return nil, err
	}
	p := &policy{cfg: *cfg, ops: map[string]*opPolicy{}, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed)),
		buckets: map[string]map[string]*bucket{}}
	// limit is the quota of a name (an operation or cryptoQuota), 0 for none.
	limit := func(name string) int {
		if n, ok := cfg.Quota[name]; ok {
			return n
		}
		if cfg.Quotas == QuotasAWS {
			return awsQuotas[name]
		}
		return 0
	}
	get := func(op string) *opPolicy {
		o := p.ops[op]
		if o == nil {
			o = &opPolicy{bucket: op}
			p.ops[op] = o
		}
		return o
	}
	for _, op := range slices.Concat(slices.Collect(maps.Keys(awsQuotas)), slices.Collect(maps.Keys(cfg.Quota))) {
		if n := limit(op); n > 0 && op != cryptoQuota {
			get(op).quota = n
		}
	}
	if shared := limit(cryptoQuota); shared > 0 {
		for _, op := range cryptoOps {
			if _, own := cfg.Quota[op]; !own {
				o := get(op)
				o.quota, o.bucket = shared, cryptoQuota
			}
		}
	}
	var star []Fault
	for _, ft := range cfg.Faults {
		if ft.Op == AllOps {
			star = append(star, ft)
		} else {
			get(ft.Op).add(ft)
		}
	}
	// The AllOps faults come after an operation's own.
	for _, ft := range star {
		for _, o := range p.ops {
			o.add(ft)
		}
	}
	if len(star) > 0 {
		p.any = &opPolicy{}
		for _, ft := range star {
			p.any.add(ft)
		}
	}
	return p, nil
}

// normalize checks cfg and fills in its defaults.
func (f *Front) normalize(cfg *Config) error {
	switch cfg.Quotas {
	case "":
		cfg.Quotas = QuotasNone
	case QuotasNone, QuotasAWS:
	default:
		return fmt.Errorf("quotas %q: want aws or none", cfg.Quotas)
	}
	for op, n := range cfg.Quota {
		if !f.knownOp(op) {
			return fmt.Errorf("quota for unknown operation %q", op)
		}
		if n < 0 {
			return fmt.Errorf("quota %s=%d is negative", op, n)
		}
	}
	if len(cfg.Quota) == 0 {
		cfg.Quota = nil
	}
	for i := range cfg.Faults {
		ft := &cfg.Faults[i]
		if err := ft.normalize(); err != nil {
			return fmt.Errorf("fault %s %s: %w", ft.Op, ft.Kind, err)
		}
		if ft.Op != AllOps && !f.knownOp(ft.Op) {
			return fmt.Errorf("fault for unknown operation %q", ft.Op)
		}
	}
	if len(cfg.Faults) == 0 {
		cfg.Faults = nil
	}
	for cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	if err := cfg.Consistency.check(); err != nil {
		return err
	}
	for key, account := range cfg.AccessKeys {
		if key == "" || !accountPattern.MatchString(account) {
			return fmt.Errorf("access key %q: account %q is not 12 digits", key, account)
		}
	}
	if len(cfg.AccessKeys) == 0 {
		cfg.AccessKeys = nil
	}
	for i := range cfg.Roles {
		if err := cfg.Roles[i].check(); err != nil {
			return err
		}
	}
	if len(cfg.Roles) == 0 {
		cfg.Roles = nil
	}
	for _, account := range cfg.ServiceQuotasAccessDenied {
		if !accountPattern.MatchString(account) {
			return fmt.Errorf("serviceQuotasAccessDenied: account %q is not 12 digits", account)
		}
	}
	if len(cfg.ServiceQuotasAccessDenied) == 0 {
		cfg.ServiceQuotasAccessDenied = nil
	}
	for account := range cfg.UsageTrackingStart {
		if !accountPattern.MatchString(account) {
			return fmt.Errorf("usageTrackingStart: account %q is not 12 digits", account)
		}
	}
	if len(cfg.UsageTrackingStart) == 0 {
		cfg.UsageTrackingStart = nil
	}
	if cfg.ClockOffset < 0 {
		return fmt.Errorf("clock offset %s is negative: the server's clock only moves forward", time.Duration(cfg.ClockOffset))
	}
	return nil
}

func (o *opPolicy) add(ft Fault) {
	if ft.Kind == FaultLatency {
		o.delays = append(o.delays, ft)
	} else {
		o.faults = append(o.faults, ft)
	}
}

// decide applies the tenant's quota of op and draws op's faults.
func (p *policy) decide(tenant, op string, now time.Time) action {
	o, ok := p.ops[op]
	if !ok {
		if o = p.any; o == nil {
			return action{}
		}
	}
	if o.quota > 0 && !p.bucket(tenant, o).take(now) {
		return action{kind: FaultThrottle}
	}
	if len(o.faults) == 0 && len(o.delays) == 0 {
		return action{}
	}
	var a action
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ft := range o.delays {
		if p.rng.Float64() < ft.Rate {
			a.delay += time.Duration(ft.Latency)
		}
	}
	if len(o.faults) > 0 {
		r, sum := p.rng.Float64(), 0.0
		for _, ft := range o.faults {
			if sum += ft.Rate; r < sum {
				a.kind = ft.Kind
				break
			}
		}
	}
	return a
}

// bucket returns the tenant's bucket that o draws from, creating it full.
func (p *policy) bucket(tenant string, o *opPolicy) *bucket {
	p.bucketsMu.Lock()
	defer p.bucketsMu.Unlock()
	own := p.buckets[tenant]
	if own == nil {
		own = map[string]*bucket{}
		p.buckets[tenant] = own
	}
	b := own[o.bucket]
	if b == nil {
		b = newBucket(o.quota)
		own[o.bucket] = b
	}
	return b
}

// bucket is a token bucket holding up to limit tokens, refilled to limit a
// second after the first request that drew from it full: at most limit
// requests in any window of a second that starts at such a request, like
// AWS's per-second quotas.
type bucket struct {
	mu     sync.Mutex
	limit  int
	tokens int
	start  time.Time
}

func newBucket(limit int) *bucket { return &bucket{limit: limit, tokens: limit} }

func (b *bucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tokens == b.limit || now.Sub(b.start) >= time.Second {
		b.tokens, b.start = b.limit, now
	}
	if b.tokens == 0 {
		return false
	}
	b.tokens--
	return true
}

// SetConfig replaces the quota and fault configuration atomically; the quotas
// start afresh.
func (f *Front) SetConfig(cfg Config) error {
	cfg.Quota = maps.Clone(cfg.Quota)
	cfg.Faults = slices.Clone(cfg.Faults)
	cfg.AccessKeys = maps.Clone(cfg.AccessKeys)
	cfg.Roles = cloneRoles(cfg.Roles)
	cfg.ServiceQuotasAccessDenied = slices.Clone(cfg.ServiceQuotasAccessDenied)
	cfg.UsageTrackingStart = maps.Clone(cfg.UsageTrackingStart)
	p, err := f.compile(&cfg)
	if err != nil {
		return err
	}
	f.policy.Store(p)
	return nil
}

// Config returns the configuration in force, normalized, with its seed.
func (f *Front) Config() Config {
	cfg := f.policy.Load().cfg
	cfg.Quota = maps.Clone(cfg.Quota)
	cfg.Faults = slices.Clone(cfg.Faults)
	cfg.AccessKeys = maps.Clone(cfg.AccessKeys)
	cfg.Roles = cloneRoles(cfg.Roles)
	cfg.ServiceQuotasAccessDenied = slices.Clone(cfg.ServiceQuotasAccessDenied)
	cfg.UsageTrackingStart = maps.Clone(cfg.UsageTrackingStart)
	return cfg
}

func cloneRoles(roles []Role) []Role {
	roles = slices.Clone(roles)
	for i := range roles {
		roles[i].Trust = slices.Clone(roles[i].Trust)
	}
	return roles
}

// faultAnswers are the answers of the faults, in the form each API gives
// them. The Resource Groups Tagging API's errors are ThrottledException and
// InternalServiceException
// (https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html#API_GetResources_Errors);
// it has no timeout error of its own.
var faultAnswers = map[string]map[string]handler.Response{
	kmsTarget: {
		FaultThrottle: {Code: 400, Body: `{"__type":"ThrottlingException","message":"Rate exceeded"}`},
		FaultInternal: {Code: 500, Body: `{"__type":"KMSInternalException","message":"An internal error occurred. Try again."}`},
		FaultTimeout:  {Code: 503, Body: `{"__type":"DependencyTimeoutException","message":"The system timed out while trying to fulfill the request. You can retry the request."}`},
	},
	// Service Quotas' errors are TooManyRequestsException and
	// ServiceException
	// (https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_ListServiceQuotas.html#API_ListServiceQuotas_Errors).
	quotasTarget: {
		FaultThrottle: {Code: 400, Body: `{"__type":"TooManyRequestsException","Message":"Rate exceeded"}`},
		FaultInternal: {Code: 500, Body: `{"__type":"ServiceException","Message":"Something went wrong."}`},
		FaultTimeout:  {Code: 503, Body: `{"__type":"ServiceException","Message":"The request timed out."}`},
	},
	// STS throttles with Throttling and fails with InternalFailure and
	// ServiceUnavailable, its common errors
	// (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html).
	stsAPI: {
		FaultThrottle: stsError(400, "Throttling", "Rate exceeded"),
		FaultInternal: stsError(500, "InternalFailure", "The request processing has failed because of an unknown error, exception or failure."),
		FaultTimeout:  stsError(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."),
	},
	taggingTarget: {
		FaultThrottle: {Code: 400, Body: `{"__type":"ThrottledException","Message":"Rate exceeded"}`},
		FaultInternal: {Code: 500, Body: `{"__type":"InternalServiceException","Message":"The request processing failed because of an unknown error, exception, or failure. You can retry the request."}`},
		FaultTimeout:  {Code: 503, Body: `{"__type":"InternalServiceException","Message":"The request timed out. You can retry the request."}`},
	},
}

// faultAnswer is the answer of an injected fault, empty for none.
func faultAnswer(api, kind string) handler.Response {
	return faultAnswers[api][kind]
}

// resetConnection closes the request's connection without an answer, with a
// TCP reset where it can.
func resetConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // best effort: a plain close still ends the connection
			}
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// sleep waits d or until the request is cancelled.
func sleep(r *http.Request, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
	}
}

// serveConfig answers GET /_config with the configuration and PUT /_config by
// replacing it.
func (f *Front) serveConfig(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		var cfg Config
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		err := dec.Decode(&cfg)
		if err == nil {
			err = f.SetConfig(cfg)
		}
		if err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": err.Error()})
			return
		}
	default:
		w.Header().Set("Allow", "GET, PUT")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(f.Config())
}
