// Package front wraps local-kms's request handlers in an http.Handler that adds
// what local-kms lacks (grants, rotation periods and on-demand rotation,
// ListKeyPolicies, per-operation request counts) and corrects the answers that
// differ from AWS KMS.
package front

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/nsmithuk/local-kms/src/handler"
	"github.com/sirupsen/logrus"
)

// Options configures a Front. Region and AccountID go into local-kms's
// package-level config, so one process serves one region and account.
type Options struct {
	DataDir   string
	Region    string
	AccountID string
	// Logger receives a line per request and local-kms's logs; nil discards
	// them.
	Logger *logrus.Logger
	// Config sets request quotas and fault injection; the zero Config has
	// none. PUT /_config replaces it at run time.
	Config Config
}

// Front is the KMS-compatible http.Handler.
type Front struct {
	db     *data.Database
	logger *logrus.Logger
	state  *store
	counts counter
	// ops maps an operation name to local-kms's handler method for it.
	ops map[string]reflect.Value
	// handled maps an operation name to this package's implementation.
	handled map[string]func(*call) handler.Response
	// policy is the compiled quota and fault configuration; never nil.
	policy atomic.Pointer[policy]
}

// New opens (or creates) the state under opts.DataDir.
func New(opts Options) (*Front, error) {
	if opts.DataDir == "" {
		return nil, fmt.Errorf("data dir is required")
	}
	if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
		return nil, err
	}
	config.AWSRegion = opts.Region
	config.AWSAccountId = opts.AccountID
	config.DatabasePath = filepath.Join(opts.DataDir, "local-kms")

	st, err := openStore(filepath.Join(opts.DataDir, "front.json"))
	if err != nil {
		return nil, err
	}
	db, err := openDatabase(config.DatabasePath)
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
	f := &Front{db: db, logger: logger, state: st, ops: localOps(), counts: counter{m: map[string]*opCount{}}}
	f.handled = map[string]func(*call) handler.Response{
		"CreateKey":            f.createKey,
		"TagResource":          f.tagResource,
		"DescribeKey":          f.describeKey,
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
	}
	if err := f.SetConfig(opts.Config); err != nil {
		db.Close()
		return nil, err
	}
	return f, nil
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

// Close releases the database; the Front must not be used afterwards.
func (f *Front) Close() {
	f.db.Close()
}

const targetPrefix = "TrentService."

func (f *Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/_counts":
		f.serveCounts(w, r)
		return
	case "/_config":
		f.serveConfig(w, r)
		return
	}
	op := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	act := f.policy.Load().decide(op)
	if act.delay > 0 {
		sleep(r, act.delay)
	}
	var resp handler.Response
	switch act.kind {
	case FaultThrottle:
		resp = throttled
	case FaultInternal:
		resp = internalErr
	case FaultTimeout:
		resp = timedOut
	case FaultReset:
		f.counts.add(op, 0, act)
		f.logger.Infof("%s: connection reset", op)
		resetConnection(w)
		return
	default:
		resp = f.serveKMS(op, r)
		if act.kind == FaultLost {
			f.logger.Infof("%s: %d, answered 500", op, resp.Code)
			resp = internalErr
		}
	}
	f.counts.add(op, resp.Code, act)
	f.logger.Infof("%s: %d", op, resp.Code)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(resp.Code)
	_, _ = io.WriteString(w, resp.Body)
}

func (f *Front) serveKMS(op string, r *http.Request) handler.Response {
	switch {
	case r.URL.Path != "/":
		return errorResponse(404, "UnknownOperationException", "path not found: "+r.URL.Path)
	case r.Method != http.MethodPost:
		return errorResponse(405, "UnknownOperationException", "method not allowed: "+r.Method)
	case !strings.Contains(r.Header.Get("Content-Type"), "json"):
		return errorResponse(415, "SerializationException", "only JSON content types are accepted")
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return errorResponse(400, "SerializationException", err.Error())
	}
	c := &call{op: op, body: body}
	if h, ok := f.handled[op]; ok {
		return h(c)
	}
	return f.local(op, body)
}

// local runs local-kms's implementation of op on a JSON request body. A panic
// in it (some handlers assume a key type) becomes a KMSInternalException
// rather than a dropped connection.
func (f *Front) local(op string, body []byte) (resp handler.Response) {
	m, ok := f.ops[op]
	if !ok {
		return errorResponse(400, "UnknownOperationException", "operation not supported: "+op)
	}
	defer func() {
		if p := recover(); p != nil {
			resp = errorResponse(500, "KMSInternalException", fmt.Sprintf("local-kms %s failed: %v", op, p))
		}
	}()
	req, _ := http.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
	h := handler.NewRequestHandler(req, f.logger, f.db)
	return m.Call([]reflect.Value{reflect.ValueOf(h)})[0].Interface().(handler.Response)
}

// localJSON runs a local-kms operation with a request built from in.
func (f *Front) localJSON(op string, in any) handler.Response {
	body, _ := json.Marshal(in)
	return f.local(op, body)
}

// call is one KMS request being served by this package.
type call struct {
	op   string
	body []byte
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

// counter counts requests, non-2xx answers (and connections reset), throttled
// requests (over quota or injected) and requests given another fault
// (including latency) per operation.
type counter struct {
	mu sync.Mutex
	m  map[string]*opCount
}

type opCount struct {
	Requests  int `json:"requests"`
	Errors    int `json:"errors"`
	Throttled int `json:"throttled"`
	Faulted   int `json:"faulted"`
}

func (c *counter) add(op string, code int, act action) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.m[op]
	if n == nil {
		n = &opCount{}
		c.m[op] = n
	}
	n.Requests++
	if !success(code) {
		n.Errors++
	}
	if act.kind == FaultThrottle {
		n.Throttled++
	} else if act.kind != "" || act.delay > 0 {
		n.Faulted++
	}
}

// serveCounts answers GET /_counts with the counts and DELETE /_counts by
// resetting them.
func (f *Front) serveCounts(w http.ResponseWriter, r *http.Request) {
	f.counts.mu.Lock()
	defer f.counts.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(f.counts.m)
	case http.MethodDelete:
		f.counts.m = map[string]*opCount{}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, DELETE")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}
