// Package front wraps local-kms's request handlers in an http.Handler that
// behaves like real AWS KMS: every account and region from one listener,
// what local-kms lacks (grants, rotation periods and on-demand rotation,
// ListKeyPolicies, multi-Region keys, the Resource Groups Tagging API's
// GetResources), AWS's limits, its eventual consistency when asked for, and
// per-operation request counts, quotas and faults. It corrects the answers
// that differ from AWS KMS.
package front

import (
	"bytes"
	"cmp"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/nsmithuk/local-kms/src/handler"
	"github.com/sirupsen/logrus"
)

// Options configures a Front.
type Options struct {
	DataDir string
	// Region and AccountID are the defaults: the region of a request
	// without a SigV4 credential scope, and the account of access keys the
	// configuration does not list.
	Region    string
	AccountID string
	// Logger receives a line per request and local-kms's logs; nil discards
	// them.
	Logger *logrus.Logger
	// Config sets request quotas, fault injection, eventual consistency and
	// access keys; the zero Config has none. PUT /_config replaces it at
	// run time.
	Config Config
	// RequestsKept is how many requests GET /_requests can show;
	// DefaultRequestsKept if 0.
	RequestsKept int
}

// Front is the KMS-compatible http.Handler.
type Front struct {
	dataDir                       string
	defaultRegion, defaultAccount string
	logger                        *logrus.Logger
	// clock is the machine's clock (a test's fake one); now() moves it by
	// the configuration's clockOffset.
	clock func() time.Time

	// mu serializes the requests served: local-kms reads package-level
	// config (region and account) while it serves, and the front's
	// read-modify-writes of keys must not interleave with local-kms's. It
	// guards tenants and accounts.
	mu       sync.Mutex
	tenants  map[string]*tenant
	accounts map[string]*store[accountData]

	// sessions are the temporary access keys AssumeRole issued.
	sessions *store[sessionData]

	counts     counter
	requests   *requestLog
	principals principals
	// ops maps an operation name to local-kms's handler method for it.
	ops map[string]reflect.Value
	// handled maps a KMS operation name to this package's implementation.
	handled map[string]func(*call) handler.Response
	// tagging holds the Resource Groups Tagging API's operations.
	tagging map[string]func(*call) handler.Response
	// endpoints are the server's own, by path.
	endpoints map[string]http.HandlerFunc
	// policy is the compiled configuration; never nil.
	policy atomic.Pointer[policy]
}

// New opens (or creates) the state under opts.DataDir.
func New(opts Options) (*Front, error) {
	switch {
	case opts.DataDir == "":
		return nil, fmt.Errorf("data dir is required")
	case !accountPattern.MatchString(opts.AccountID):
		return nil, fmt.Errorf("account id %q is not 12 digits", opts.AccountID)
	case !regionPattern.MatchString(opts.Region):
		return nil, fmt.Errorf("region %q is not a region name", opts.Region)
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}
	if err := migrateLayout(opts.DataDir, opts.AccountID, opts.Region); err != nil {
		return nil, fmt.Errorf("moving the state to its tenant directory: %w", err)
	}
	sessions, err := openSessions(filepath.Join(opts.DataDir, "sts-sessions.json"))
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = logrus.New()
		logger.SetOutput(io.Discard)
		// Also skips formatting the messages nobody reads.
		logger.SetLevel(logrus.PanicLevel)
	}
	f := &Front{
		dataDir: opts.DataDir, defaultRegion: opts.Region, defaultAccount: opts.AccountID,
		logger: logger, clock: time.Now, sessions: sessions,
		tenants: map[string]*tenant{}, accounts: map[string]*store[accountData]{},
		counts:     counter{m: map[string]map[string]*opCount{}},
		requests:   newRequestLog(opts.RequestsKept),
		principals: principals{created: map[string]time.Time{}},
		ops:        localOps(),
	}
	f.handled = map[string]func(*call) handler.Response{
		"CreateKey":            f.createKey,
		"TagResource":          f.tagResource,
		"DescribeKey":          f.describeKey,
		"ListKeys":             f.listKeys,
		"ListResourceTags":     f.listResourceTags,
		"PutKeyPolicy":         f.putKeyPolicy,
		"GetKeyPolicy":         f.getKeyPolicy,
		"ListKeyPolicies":      f.listKeyPolicies,
		"ScheduleKeyDeletion":  f.scheduleKeyDeletion,
		"CancelKeyDeletion":    f.cancelKeyDeletion,
		"EnableKeyRotation":    f.enableKeyRotation,
		"DisableKeyRotation":   f.disableKeyRotation,
		"GetKeyRotationStatus": f.getKeyRotationStatus,
		"RotateKeyOnDemand":    f.rotateKeyOnDemand,
		"ListKeyRotations":     f.listKeyRotations,
		"CreateGrant":          f.createGrant,
		"ListGrants":           f.listGrants,
		"ListRetirableGrants":  f.listRetirableGrants,
		"RetireGrant":          f.retireGrant,
		"RevokeGrant":          f.revokeGrant,
		"ReplicateKey":         f.replicateKey,
		"EnableKey":            f.enableKey,
		"CreateAlias":          f.createAlias,
		"Decrypt":              f.decrypt,
		"GetKeyLastUsage":      f.getKeyLastUsage,
		"UpdatePrimaryRegion":  f.updatePrimaryRegion,
		// local-kms imports once, into symmetric keys, by the machine's clock.
		"GetParametersForImport":    f.getParametersForImport,
		"ImportKeyMaterial":         f.importKeyMaterial,
		"DeleteImportedKeyMaterial": f.deleteImportedKeyMaterial,
	}
	f.tagging = map[string]func(*call) handler.Response{
		"GetResources": f.getResources,
	}
	f.endpoints = map[string]http.HandlerFunc{
		"/_counts":     f.serveCounts,
		"/_config":     f.serveConfig,
		"/_requests":   f.serveRequests,
		"/_principals": f.servePrincipals,
	}
	if err := f.SetConfig(opts.Config); err != nil {
		return nil, err
	}
	// Open the default tenant now, so that a data dir another process holds
	// fails at start.
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.tenant(opts.AccountID, opts.Region); err != nil {
		f.closeLocked()
		return nil, err
	}
	return f, nil
}

// now is the server's one clock: windows, lags, grant, key, credential and
// key material dates, all moved by the configuration's clockOffset so that a
// test can make weeks pass.
func (f *Front) now() time.Time {
	return f.clock().Add(time.Duration(f.policy.Load().cfg.ClockOffset))
}

// openDatabase turns goleveldb's panic (e.g. the directory is locked by another
// process) into an error.
func openDatabase(path string) (db *data.Database, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("open %s: %v", path, r)
		}
	}()
	return data.NewDatabase(path), nil
}

// localOps finds local-kms's operations: every exported method of
// *handler.RequestHandler that takes no argument and returns a Response.
func localOps() map[string]reflect.Value {
	ops := map[string]reflect.Value{}
	t := reflect.TypeFor[*handler.RequestHandler]()
	for i := range t.NumMethod() {
		m := t.Method(i)
		if m.Type.NumIn() == 1 && m.Type.NumOut() == 1 && m.Type.Out(0) == reflect.TypeFor[handler.Response]() {
			ops[m.Name] = m.Func
		}
	}
	return ops
}

// Close releases the databases; the Front must not be used afterwards.
func (f *Front) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeLocked()
}

func (f *Front) closeLocked() {
	for id, t := range f.tenants {
		t.db.Close()
		delete(f.tenants, id)
	}
}

// The APIs served: the JSON 1.1 ones by their X-Amz-Target prefix, and STS,
// which speaks the Query protocol (a form-encoded POST whose Action names
// the operation, https://docs.aws.amazon.com/STS/latest/APIReference/CommonParameters.html).
const (
	kmsTarget     = "TrentService."
	taggingTarget = "ResourceGroupsTaggingAPI_20170126."
	quotasTarget  = "ServiceQuotasV20190624."
	stsAPI        = "sts"
)

// operation finds a request's API and operation name: by its X-Amz-Target
// header, or for a form without one, by the STS Action it names (the form
// is read, and put back for serving).
func operation(r *http.Request) (api, op string) {
	target := r.Header.Get("X-Amz-Target")
	for _, prefix := range []string{taggingTarget, quotasTarget} {
		if op, ok := strings.CutPrefix(target, prefix); ok {
			return prefix, op
		}
	}
	if target == "" && strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		if form, err := url.ParseQuery(string(body)); err == nil && stsActions[form.Get("Action")] {
			return stsAPI, form.Get("Action")
		}
	}
	return kmsTarget, strings.TrimPrefix(target, kmsTarget)
}

// contentTypes are the answers' content types by API.
var contentTypes = map[string]string{stsAPI: "text/xml"}

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if serve, ok := f.endpoints[r.URL.Path]; ok {
		serve(w, r)
		return
	}
	api, op := operation(r)
	who, err := f.caller(r)
	tid := tenantID(who.account, who.region)
	entry := requestEntry{Time: f.now(), Operation: op, Account: who.account, Region: who.region,
		AccessKey: who.accessKey, Principal: who.principal, UserAgent: r.UserAgent()}
	// Every AWS answer carries a request id
	// (https://docs.aws.amazon.com/kms/latest/developerguide/logging-using-cloudtrail.html):
	// GetKeyLastUsage reports the one of a key's last use.
	who.requestID = newUUID()
	resp, act := f.answer(r, who, err, api, op, entry.Time)

	f.counts.add(tid, op, resp.Code, act)
	entry.Status = resp.Code
	switch {
	case act.kind == FaultReset:
		entry.ErrorCode = "ConnectionReset"
	case !success(resp.Code):
		entry.ErrorCode = errorCode(resp.Body)
	}
	f.requests.add(entry)
	f.logger.Infof("%s %s: %d %s", tid, op, resp.Code, entry.ErrorCode)
	if act.kind == FaultReset {
		resetConnection(w)
		return
	}
	w.Header().Set("Content-Type", cmp.Or(contentTypes[api], "application/x-amz-json-1.1"))
	w.Header().Set("X-Amzn-Requestid", who.requestID)
	// Every AWS answer is dated by AWS's clock (an origin server with a
	// clock sends Date, RFC 9110 section 6.6.1); the SDKs read it to correct
	// their clock skew (https://aws.amazon.com/blogs/developer/clock-skew-correction/,
	// aws-sdk-go-v2 aws/middleware GetServerTime), and a client can measure
	// times KMS reports (a key's last use) against it. Here it is the
	// server's clock, moved by clockOffset.
	w.Header().Set("Date", entry.Time.UTC().Format(http.TimeFormat))
	w.WriteHeader(resp.Code)
	_, _ = io.WriteString(w, resp.Body)
}

// answer serves a request after its quota and faults, unless its credential
// cannot be used. A reset connection has no answer.
func (f *Front) answer(r *http.Request, who caller, authErr error, api, op string, now time.Time) (handler.Response, action) {
	var ae *authError
	if errors.As(authErr, &ae) {
		return apiError(api, ae.status, ae.code, ae.message), action{}
	}
	act := f.policy.Load().decide(tenantID(who.account, who.region), op, now)
	if act.delay > 0 {
		sleep(r, act.delay)
	}
	if act.kind == FaultReset {
		return handler.Response{}, act
	}
	resp := faultAnswer(api, act.kind)
	if resp.Empty() {
		resp = f.serve(who, api, op, r)
	}
	if act.kind == FaultLost {
		f.logger.Infof("%s: %d, answered 500", op, resp.Code)
		resp = faultAnswer(api, FaultInternal)
	}
	return resp, act
}

// apiError is an error answer in the form of the API: JSON for the JSON 1.1
// APIs, an ErrorResponse document for STS.
func apiError(api string, code int, errType, message string) handler.Response {
	if api == stsAPI {
		return stsError(code, errType, message)
	}
	return errorResponse(code, errType, message)
}

// errorCode is the type of an AWS JSON error answer, or the code of an STS
// ErrorResponse.
func errorCode(body string) string {
	if strings.HasPrefix(body, "<") {
		var e stsErrorResponse
		_ = xml.Unmarshal([]byte(body), &e)
		return e.Error.Code
	}
	var e struct {
		Type string `json:"__type"`
	}
	_ = json.Unmarshal([]byte(body), &e)
	if _, after, ok := strings.Cut(e.Type, "#"); ok {
		return after
	}
	return e.Type
}

// serve answers a request of the KMS or tagging API in its tenant.
func (f *Front) serve(who caller, api, op string, r *http.Request) handler.Response {
	switch {
	case r.URL.Path != "/":
		return errorResponse(404, "UnknownOperationException", "path not found: "+r.URL.Path)
	case r.Method != http.MethodPost:
		return errorResponse(405, "UnknownOperationException", "method not allowed: "+r.Method)
	case api == stsAPI:
		return f.serveSTS(who, op, r)
	case !strings.Contains(r.Header.Get("Content-Type"), "json"):
		return errorResponse(415, "SerializationException", "only JSON content types are accepted")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return errorResponse(400, "SerializationException", err.Error())
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t, err := f.tenant(who.account, who.region)
	if err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	c := &call{f: f, t: t, op: op, principal: who.principal, requestID: who.requestID, now: f.now(), cfg: f.policy.Load().cfg.Consistency}
	var resp handler.Response
	switch api {
	case taggingTarget:
		resp = f.serveTagging(c, body)
	case quotasTarget:
		resp = f.serveQuotas(c, body)
	default:
		resp = f.serveKMS(c, body)
	}
	resp.Body = t.toExternal(resp.Body)
	return resp
}

// serveKMS answers a KMS request: ARNs of elsewhere first, then the key it
// names as eventual consistency shows it, then the operation.
func (f *Front) serveKMS(c *call, raw []byte) handler.Response {
	refs, resp := keyRefs(raw)
	if !resp.Empty() {
		return resp
	}
	if resp := c.checkARNs(refs); !resp.Empty() {
		return resp
	}
	c.body = c.t.toInternal(raw)
	if c.op == "ListKeys" || c.op == "ListAliases" {
		c.t.purgeExpiredKeys(c.now)
	}
	arn := c.t.targetKey(refs)
	answer, restore := f.prepareKey(c, arn)
	if !answer.Empty() {
		return answer
	}
	if h, ok := f.handled[c.op]; ok {
		resp = h(c)
	} else {
		resp = f.local(c, c.body)
	}
	if restore != nil {
		restore()
	}
	c.recordUsage(resp)
	if arn != "" && recordedOps[c.op] && success(resp.Code) {
		c.t.record(arn, c.now, c.cfg.horizon())
	}
	return resp
}

// targetKey is the ARN of the key a request acts on, "" for none: the key
// its KeyId, TargetKeyId (aliases) or DestinationKeyId (ReEncrypt) names.
func (t *tenant) targetKey(refs map[string]string) string {
	for _, field := range []string{"KeyId", "TargetKeyId", "DestinationKeyId"} {
		if v := refs[field]; v != "" {
			return t.resolveKey(string(t.toInternal([]byte(v))))
		}
	}
	return ""
}

// prepareKey brings the key a request acts on up to the server's clock,
// keeps its state before a write, and shows it as eventual consistency
// does: it returns an answer to give instead of serving the request, or a
// function to call after serving it.
func (f *Front) prepareKey(c *call, arn string) (handler.Response, func()) {
	if arn == "" {
		return handler.Response{}, nil
	}
	f.settleKey(c, arn)
	if resp := f.refuseTransient(c, arn); !resp.Empty() {
		return resp, nil
	}
	if recordedOps[c.op] {
		c.t.recordBaseline(arn, c.cfg.horizon())
	}
	return c.staleView(arn)
}

// keyRefs reads the fields of a request that name keys.
func keyRefs(body []byte) (map[string]string, handler.Response) {
	refs := map[string]string{}
	if len(bytes.TrimSpace(body)) == 0 {
		return refs, handler.Response{}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, errorResponse(400, "SerializationException", err.Error())
	}
	for _, name := range keyRefFields {
		var s string
		if json.Unmarshal(fields[name], &s) == nil {
			refs[name] = s
		}
	}
	return refs, handler.Response{}
}

// settleKey brings a key up to the server's clock before a request uses it:
// deleted if its deletion date has passed, and for a multi-Region key, its
// replicas that are gone forgotten.
func (f *Front) settleKey(c *call, arn string) {
	if c.t.purgeExpired(arn, c.now) {
		return
	}
	if err := c.t.expireMaterials(arn, c.now); err != nil {
		f.logger.Warnf("expiring the key material of %s: %v", arn, err)
	}
	if id := strings.TrimPrefix(arn, c.t.arnPrefix()+"key/"); strings.HasPrefix(id, multiRegionPrefix) {
		if err := f.settleReplicas(c, id); err != nil {
			f.logger.Warnf("settling the replicas of %s: %v", arn, err)
		}
	}
}

// local runs local-kms's implementation of an operation in the call's
// tenant. The caller holds f.mu, which makes setting local-kms's
// package-level region and account for the request safe. A panic in it (some
// handlers assume a key type) becomes a KMSInternalException rather than a
// dropped connection.
func (f *Front) local(c *call, body []byte) handler.Response {
	return f.localOp(c, c.op, body)
}

func (f *Front) localOp(c *call, op string, body []byte) (resp handler.Response) {
	m, ok := f.ops[op]
	if !ok {
		return errorResponse(400, "UnknownOperationException", "operation not supported: "+op)
	}
	defer func() {
		if p := recover(); p != nil {
			resp = errorResponse(500, "KMSInternalException", fmt.Sprintf("local-kms %s failed: %v", op, p))
		}
	}()
	config.AWSRegion, config.AWSAccountId = c.t.region, c.t.account
	req, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	h := handler.NewRequestHandler(req, f.logger, c.t.db)
	return m.Call([]reflect.Value{reflect.ValueOf(h)})[0].Interface().(handler.Response)
}

// localJSON runs a local-kms operation with a request built from in.
func (f *Front) localJSON(c *call, op string, in any) handler.Response {
	body, _ := json.Marshal(in)
	return f.localOp(c, op, body)
}

// call is one request being served by this package.
type call struct {
	f    *Front
	t    *tenant
	op   string
	body []byte
	// principal is the caller's ARN.
	principal string
	// requestID is the id the answer carries.
	requestID string
	// now is the moment the request is served at, by the server's clock.
	now time.Time
	cfg Consistency
}

// decode parses the request body into v, answering SerializationException as
// AWS does for a body that is not JSON.
func (c *call) decode(v any) (handler.Response, bool) {
	if len(bytes.TrimSpace(c.body)) == 0 {
		return handler.Response{}, true
	}
	if err := json.Unmarshal(c.body, v); err != nil {
		return errorResponse(400, "SerializationException", err.Error()), false
	}
	return handler.Response{}, true
}

// errorResponse builds an AWS JSON 1.1 error, in the same form as local-kms's
// own errors, which aws-sdk-go-v2 decodes into the typed exception.
func errorResponse(code int, errType, message string) handler.Response {
	return jsonResponse(code, map[string]string{"__type": errType, "message": message})
}

func jsonResponse(code int, v any) handler.Response {
	b, err := json.Marshal(v)
	if err != nil {
		return errorResponse(500, "KMSInternalException", err.Error())
	}
	return handler.Response{Code: code, Body: string(b)}
}

func notFound(format string, args ...any) handler.Response {
	return errorResponse(400, "NotFoundException", fmt.Sprintf(format, args...))
}

func validationError(format string, args ...any) handler.Response {
	return errorResponse(400, "ValidationException", fmt.Sprintf(format, args...))
}

func invalidState(format string, args ...any) handler.Response {
	return errorResponse(400, "KMSInvalidStateException", fmt.Sprintf(format, args...))
}

func success(code int) bool { return code >= 200 && code < 300 }
