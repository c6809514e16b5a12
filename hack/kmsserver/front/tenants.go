package front

// One listener serves every (account, region) pair, as AWS does. Each pair
// is a tenant with its own local-kms database and front state under
// <data-dir>/<account>/<region>/.
//
// local-kms writes ARNs as "arn:aws:kms:<region>:<account>:" whatever the
// partition, and stores keys under those ARNs. The front keeps that internal
// form and translates at the edge: request bodies from the tenant's
// partition to "aws", answers back (see toInternal and toExternal).

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/nsmithuk/local-kms/src/cmk"
	"github.com/nsmithuk/local-kms/src/data"
	"github.com/nsmithuk/local-kms/src/handler"
	"github.com/syndtr/goleveldb/leveldb"
)

type tenant struct {
	account, region, partition string
	db                         *data.Database
	state                      *store[storeData]
	// history is the recent past of keys, by key ARN, for the eventual
	// consistency switches; in memory only (see consistency.go).
	history map[string][]snapshot
	records int // snapshots recorded, to settle every key now and then
	// revoked are grants revoked or retired less than grantListLag ago,
	// which ListGrants still shows.
	revoked []revokedGrant
	// sweptAt is when purgeExpiredKeys last ran.
	sweptAt time.Time
	// index is the keys and their tags for tag:GetResources (tagindex.go).
	index tagIndex
}

func tenantID(account, region string) string { return account + "/" + region }

// accountPattern is an AWS account id; it also keeps data paths safe.
var accountPattern = regexp.MustCompile(`^[0-9]{12}$`)

// regionPattern accepts what can safely name a directory; AWS regions and
// names such as "local" that test setups use.
var regionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// partitions maps region name prefixes to their partition, from the SDK's
// partition table (regionRegex of each partition in
// https://github.com/aws/aws-sdk-go-v2/blob/main/internal/endpoints/awsrulesfn/partitions.json).
// The longest prefix wins; every other region is in "aws".
var partitions = []struct{ prefix, partition string }{
	{"us-isob-", "aws-iso-b"},
	{"us-isof-", "aws-iso-f"},
	{"us-iso-", "aws-iso"},
	{"us-gov-", "aws-us-gov"},
	{"eu-isoe-", "aws-iso-e"},
	{"eusc-", "aws-eusc"},
	{"cn-", "aws-cn"},
}

func partitionOf(region string) string {
	for _, p := range partitions {
		if strings.HasPrefix(region, p.prefix) {
			return p.partition
		}
	}
	return "aws"
}

// tenant returns the tenant of (account, region), opening its state on
// first use. f.mu must be held.
func (f *Front) tenant(account, region string) (*tenant, error) {
	id := tenantID(account, region)
	if t := f.tenants[id]; t != nil {
		return t, nil
	}
	if !accountPattern.MatchString(account) || !regionPattern.MatchString(region) {
		return nil, fmt.Errorf("invalid account %q or region %q", account, region)
	}
	dir := filepath.Join(f.dataDir, account, region)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	st, err := openTenantStore(filepath.Join(dir, "front.json"))
	if err != nil {
		return nil, err
	}
	db, err := openDatabase(filepath.Join(dir, "local-kms"))
	if err != nil {
		return nil, err
	}
	t := &tenant{account: account, region: region, partition: partitionOf(region),
		db: db, state: st, history: map[string][]snapshot{}}
	f.tenants[id] = t
	return t, nil
}

// migrateLayout moves the state of a server from before tenants
// (<data-dir>/local-kms and front.json) to the default tenant's directory,
// so that a data dir kept across upgrades keeps its keys.
func migrateLayout(dataDir, account, region string) error {
	old := filepath.Join(dataDir, "local-kms")
	if _, err := os.Stat(old); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	dir := filepath.Join(dataDir, account, region)
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.Rename(old, filepath.Join(dir, "local-kms")); err != nil {
		return err
	}
	err := os.Rename(filepath.Join(dataDir, "front.json"), filepath.Join(dir, "front.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// arnPrefix is the internal prefix of the tenant's KMS ARNs.
func (t *tenant) arnPrefix() string { return "arn:aws:kms:" + t.region + ":" + t.account + ":" }

// keyARN turns a key id into the tenant's internal key ARN; an ARN is kept.
func (t *tenant) keyARN(keyID string) string {
	if strings.HasPrefix(keyID, "arn:") {
		return keyID
	}
	return t.arnPrefix() + "key/" + keyID
}

// rootARN is the account's root principal, as the default key policy and
// grants' IssuingAccount name it.
func (t *tenant) rootARN() string { return "arn:" + t.partition + ":iam::" + t.account + ":root" }

// toInternal rewrites the KMS ARNs of a request body from the tenant's
// partition to local-kms's "aws".
func (t *tenant) toInternal(body []byte) []byte {
	if t.partition == "aws" {
		return body
	}
	return bytes.ReplaceAll(body, []byte("arn:"+t.partition+":kms:"), []byte("arn:aws:kms:"))
}

// toExternal rewrites the KMS ARNs of an answer to the tenant's partition.
func (t *tenant) toExternal(body string) string {
	if t.partition == "aws" {
		return body
	}
	return strings.ReplaceAll(body, "arn:aws:kms:", "arn:"+t.partition+":kms:")
}

// keyRefFields are the request fields that name a key or an alias.
var keyRefFields = []string{"KeyId", "TargetKeyId", "SourceKeyId", "DestinationKeyId"}

// checkARNs answers a request that names a key or alias by an ARN of
// another partition, region or account as AWS does. Another region (AWS's
// answer recorded in LocalStack's test_get_key_in_different_region snapshot,
// https://github.com/localstack/localstack/blob/main/tests/aws/services/kms/test_kms.snapshot.json):
// 400 NotFoundException "Invalid arn <region>". Another account: the key
// policy decides, and a default key policy trusts only its own account, so
// AccessDeniedException in IAM's wording
// (https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_access-denied.html).
func (c *call) checkARNs(refs map[string]string) handler.Response {
	for _, field := range keyRefFields {
		v := refs[field]
		if !strings.HasPrefix(v, "arn:") {
			continue
		}
		parts := strings.SplitN(v, ":", 6)
		if len(parts) < 6 {
			continue
		}
		partition, region, account := parts[1], parts[3], parts[4]
		switch {
		case partition != c.t.partition || region != c.t.region:
			return notFound("Invalid arn %s", region)
		case account != c.t.account:
			return errorResponse(400, "AccessDeniedException", fmt.Sprintf(
				"User: %s is not authorized to perform: kms:%s on resource: %s because no resource-based policy allows the kms:%s action",
				c.principal, c.op, v, c.op))
		}
	}
	return handler.Response{}
}

// resolveKey finds the key ARN a KeyId names (key id, key ARN, alias name
// or alias ARN), or "" if it names none.
func (t *tenant) resolveKey(keyID string) string {
	name := strings.TrimPrefix(keyID, t.arnPrefix())
	switch {
	case keyID == "":
		return ""
	case strings.HasPrefix(name, "alias/"):
		a, err := t.db.LoadAlias(t.arnPrefix() + name)
		if err != nil {
			return ""
		}
		return t.keyARN(a.TargetKeyId)
	}
	return t.keyARN(keyID)
}

// loadKey finds a key by id or ARN; like the management operations of AWS KMS
// it does not resolve aliases.
func (t *tenant) loadKey(keyID string) (cmk.Key, handler.Response) {
	if keyID == "" {
		return nil, validationError("1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null")
	}
	arn := t.keyARN(keyID)
	key, err := t.db.LoadKey(arn)
	notFoundErr := data.KeyNotFoundError
	switch {
	case err == nil && key != nil:
		return key, handler.Response{}
	case err == nil, errors.Is(err, leveldb.ErrNotFound), errors.As(err, &notFoundErr):
		return nil, notFound("Key '%s' does not exist", arn)
	default:
		return nil, errorResponse(500, "KMSInternalException", err.Error())
	}
}

// purgeExpired deletes a key whose deletion date has passed by the server's
// clock. local-kms deletes such keys by the machine's clock; this makes a
// clock set ahead (tests, a later phase) count too. It reports whether the
// key is gone.
func (t *tenant) purgeExpired(arn string, now time.Time) bool {
	key, err := t.db.LoadKey(arn)
	if err != nil || key == nil {
		return true
	}
	if !expired(key.GetMetadata(), now) {
		return false
	}
	t.deleteKey(key)
	return true
}

// deleteKey deletes a key with its tags and aliases: "Deleting a KMS key
// deletes all metadata associated with it", aliases included
// (https://docs.aws.amazon.com/kms/latest/developerguide/deleting-keys.html).
func (t *tenant) deleteKey(key cmk.Key) {
	arn := key.GetArn()
	t.markChanged(arn)
	tags, _ := t.db.ListTags(arn, maxTagsPerKey+1, "")
	for _, tg := range tags {
		_ = t.db.DeleteObject(arn + "/tag/" + tg.TagKey)
	}
	aliases, _ := t.db.ListAlias(t.arnPrefix()+"alias/", math.MaxInt64, "", key.GetMetadata().KeyId)
	for _, a := range aliases {
		_ = t.db.DeleteObject(a.AliasArn)
	}
	_ = t.db.DeleteObject(arn)
}

// purgeExpiredKeys deletes every key of the tenant whose deletion date has
// passed by the server's clock. local-kms does so by the machine's clock
// when it lists keys, so this is needed only while the server's clock is
// ahead of the machine's (clockOffset, a test's clock); it runs at most once
// a second.
func (t *tenant) purgeExpiredKeys(now time.Time) {
	if !now.After(time.Now().Add(time.Second)) || now.Sub(t.sweptAt) < time.Second {
		return
	}
	t.sweptAt = now
	keys, _ := t.db.ListKeys(t.arnPrefix()+"key/", math.MaxInt64, "")
	for _, key := range keys {
		if expired(key.GetMetadata(), now) {
			t.deleteKey(key)
		}
	}
}

func expired(md *cmk.KeyMetadata, now time.Time) bool {
	d := md.DeletionDate
	return d != 0 && d != pendingReplicaDeletionDate && d <= now.Unix()
}
