package kmsclient

// What ties a CloudTrail event to the operator and to a Kubernetes object:
// the application id in every request's User-Agent, and a log line per KMS
// write with AWS's request id.

import (
	"context"
	"regexp"
	"runtime/debug"
	"strings"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
	"github.com/go-logr/logr"
)

var (
	// release is a tagged version, prereleases included.
	release = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
	// pseudo is the end of a Go pseudo-version: a timestamp and a commit.
	pseudo = regexp.MustCompile(`[0-9]{14}-[0-9a-f]{12}$`)
)

// AppID is the SDK application id every AWS request carries in its
// User-Agent ("app/kms-operator#<version>"), which CloudTrail records as the
// event's userAgent: an auditor can tell the operator's calls from others
// made with the same role. The SDK turns a "/" in an application id into "-",
// so name and version are joined with "#", as the SDK writes its own pairs
// ("lang/go#1.26", "api/kms#1.62").
func AppID() string {
	return "kms-operator#" + version(debug.ReadBuildInfo())
}

// version is the module version of a tagged build, else the commit it was
// built from (12 hex digits, "-dirty" when modified), else "dev". AWS limits
// application ids to 50 characters, so a pseudo-version is not used whole.
func version(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; release.MatchString(v) && !pseudo.MatchString(v) {
		return v
	}
	var rev string
	var dirty bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "dev"
	}
	rev = rev[:min(12, len(rev))]
	if dirty {
		rev += "-dirty"
	}
	return rev
}

// isWrite tells KMS writes from reads by the operation's name.
func isWrite(op string) bool {
	for _, read := range []string{"Describe", "List", "Get"} {
		if strings.HasPrefix(op, read) {
			return false
		}
	}
	return true
}

// logWrite logs a KMS write attempt with the logger of ctx, which names the
// object being reconciled, and AWS's request id, which CloudTrail records as
// the event's requestID: an auditor can tie a CloudTrail event to a
// Kubernetes object. Nothing of the request or response is logged: they can
// hold grant tokens.
func logWrite(ctx context.Context, op, account, region, result string, md middleware.Metadata) {
	requestID, _ := awsmiddleware.GetRequestIDMetadata(md)
	logr.FromContextOrDiscard(ctx).Info("KMS write", "operation", op, "result", result,
		"requestID", requestID, "account", account, "region", region)
}
