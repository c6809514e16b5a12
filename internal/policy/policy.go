// Package policy compares and sanity-checks KMS key policies (IAM policy
// JSON documents).
//
// KMS hands key policies back reformatted: different whitespace and key
// order, single-element arrays collapsed to strings (or the reverse),
// statements reordered. Comparing the raw strings therefore reports drift
// that does not exist, and the operator keeps re-applying the policy forever.
// Equal compares what the policies mean instead of how they are spelled.
//
// Terraform's github.com/hashicorp/awspolicyequivalence is not used: run on
// its corpus and ours (corpus_test.go), it calls "*" and {"AWS":"*"}, or
// action names and condition keys differing only in case, different (so an
// unchanged policy would be rewritten), and treats "allow" as "Allow" and an
// empty document as "{}" (hiding a spec KMS refuses).
package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Equal reports whether two policy documents mean the same thing. It returns
// an error when either document is not a valid JSON object; the error text is
// meant to be shown to users. A bare account id principal means the account's
// root ARN in partition aws, or in the partition given with InPartition.
func Equal(a, b string, opts ...Option) (bool, error) {
	o := newOptions(opts)
	ca, err := canonical(a, o)
	if err != nil {
		return false, err
	}
	cb, err := canonical(b, o)
	if err != nil {
		return false, err
	}
	return ca == cb, nil
}

// Option changes how Equal compares.
type Option func(*options)

type options struct {
	partition string
}

func newOptions(opts []Option) options {
	o := options{partition: "aws"}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// InPartition compares policies as KMS stores them in the given AWS partition
// ("aws", the default, "aws-cn", "aws-us-gov", ...): KMS replaces a bare
// account id principal with that account's root ARN in the key's partition,
// so in aws-cn "111122223333" comes back as
// "arn:aws-cn:iam::111122223333:root". Pass PartitionOf(the key's ARN).
// An empty partition keeps the default.
func InPartition(partition string) Option {
	return func(o *options) {
		if partition != "" {
			o.partition = partition
		}
	}
}

// PartitionOf returns the partition field of an ARN ("aws-cn" for
// "arn:aws-cn:kms:cn-north-1:111122223333:key/..."), or "aws" when s is not
// an ARN (a key id, an alias name, an empty string).
func PartitionOf(s string) string {
	// arn:partition:service:region:account-id:resource; the resource may
	// itself contain colons.
	f := strings.SplitN(s, ":", 6)
	if len(f) < 6 || f[0] != "arn" || f[1] == "" {
		return "aws"
	}
	return f[1]
}

// Validate is a cheap structural check to run before sending a policy to KMS,
// so that obvious mistakes surface with a clear message instead of a
// MalformedPolicyDocumentException. It is not a full IAM grammar check.
func Validate(p string) error {
	doc, err := parse(p)
	if err != nil {
		return err
	}
	st, ok := doc["Statement"]
	if !ok {
		return errors.New(`policy has no "Statement"`)
	}
	var stmts []any
	switch s := st.(type) {
	case map[string]any:
		stmts = []any{s}
	case []any:
		if len(s) == 0 {
			return errors.New(`policy "Statement" is an empty array`)
		}
		stmts = s
	default:
		return fmt.Errorf(`policy "Statement" must be an object or an array of objects, got %s`, kind(st))
	}
	for i, s := range stmts {
		m, ok := s.(map[string]any)
		if !ok {
			return fmt.Errorf("policy Statement[%d] must be an object, got %s", i, kind(s))
		}
		switch e, ok := m["Effect"]; {
		case !ok:
			return fmt.Errorf(`policy Statement[%d] has no "Effect"`, i)
		case e != "Allow" && e != "Deny":
			return fmt.Errorf(`policy Statement[%d] "Effect" must be "Allow" or "Deny", got %s`, i, compact(e))
		}
	}
	return nil
}

// parse decodes p as a single JSON object.
func parse(p string) (map[string]any, error) {
	if strings.TrimSpace(p) == "" {
		return nil, errors.New("policy is empty")
	}
	dec := json.NewDecoder(strings.NewReader(p))
	// UseNumber keeps numbers as their literal text, so nothing is lost to
	// float64 rounding and 1 vs "1" can be compared as strings in conditions.
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("policy is not valid JSON: %w", err)
	}
	// Reject trailing data: "{}{}" or "{} x" is not one policy document.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("policy is not valid JSON: unexpected data after the top-level object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("policy is not a JSON object, got %s", kind(v))
	}
	return m, nil
}

// canonical renders p in a canonical JSON form: two policies compared with
// the same options are equal exactly when their canonical forms are equal
// strings.
func canonical(p string, o options) (string, error) {
	doc, err := parse(p)
	if err != nil {
		return "", err
	}
	out := map[string]any{}
	for k, v := range doc {
		if k == "Statement" {
			out[k] = statements(v, o)
		} else {
			// Version and Id are compared as-is.
			out[k] = generic(v)
		}
	}
	return compact(out), nil
}

// statements canonicalizes the Statement element.
func statements(v any, o options) any {
	var list []any
	switch s := v.(type) {
	case map[string]any:
		// A single statement object means the same as a one-element array.
		list = []any{s}
	case []any:
		list = s
	default:
		return generic(v)
	}
	// Statement order does not matter to IAM, and a repeated statement grants
	// nothing extra: compare them as a set of canonical forms.
	strs := make([]string, 0, len(list))
	for _, s := range list {
		strs = append(strs, compact(statement(s, o)))
	}
	slices.Sort(strs)
	strs = slices.Compact(strs)
	out := make([]json.RawMessage, len(strs))
	for i, s := range strs {
		out[i] = json.RawMessage(s)
	}
	return out
}

func statement(v any, o options) any {
	m, ok := unwrap(v).(map[string]any)
	if !ok {
		return generic(v)
	}
	out := map[string]any{}
	for k, v := range m {
		switch k {
		case "Sid":
			// An empty Sid says nothing; treat it like an absent one.
			if v == "" {
				continue
			}
			out[k] = v
		case "Action", "NotAction":
			// IAM matches action names case-insensitively ("kms:Encrypt" ==
			// "KMS:encrypt"), and a list is a set.
			out[k] = set(v, strings.ToLower)
		case "Resource", "NotResource":
			// ARNs are case-sensitive, but a list is still a set.
			out[k] = set(v, nil)
		case "Principal", "NotPrincipal":
			out[k] = principal(v, o.partition)
		case "Condition":
			out[k] = condition(v)
		default:
			// Effect and anything unknown: structural comparison.
			out[k] = generic(v)
		}
	}
	return out
}

// principal canonicalizes a Principal/NotPrincipal element.
func principal(v any, partition string) any {
	v = unwrap(v)
	if v == "*" {
		// IAM documents "*" as shorthand for {"AWS": "*"} (everyone).
		return map[string]any{"AWS": []string{"*"}}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return generic(v)
	}
	out := map[string]any{}
	for typ, ids := range m {
		// Within one principal type (AWS, Service, Federated...) the values
		// are a set; KMS collapses one-element lists to a string.
		fold := (func(string) string)(nil)
		if typ == "AWS" {
			fold = func(id string) string { return accountRoot(id, partition) }
		}
		out[typ] = set(ids, fold)
	}
	return out
}

// accountRoot: IAM stores a bare account id principal as the account's root
// ARN in the key's partition, so KMS returns "111122223333" as
// "arn:aws:iam::111122223333:root" in partition aws.
func accountRoot(id, partition string) string {
	if len(id) == 12 && strings.Trim(id, "0123456789") == "" {
		return "arn:" + partition + ":iam::" + id + ":root"
	}
	return id
}

// condition canonicalizes a Condition block: operator -> key -> values.
func condition(v any) any {
	ops, ok := unwrap(v).(map[string]any)
	if !ok {
		return generic(v)
	}
	out := map[string]any{}
	for op, keys := range ops {
		km, ok := unwrap(keys).(map[string]any)
		if !ok {
			out[op] = generic(keys)
			continue
		}
		// Operators (StringEquals...) are case-sensitive in IAM, so op is
		// kept as-is; condition keys are not, so they are lowercased, and
		// keys colliding after that have their values merged.
		merged := map[string][]string{}
		for key, vals := range km {
			lk := strings.ToLower(key)
			// Start from an empty list, not nil: an empty value list must
			// stay [] (nil would render as null, which reads back as "null").
			if merged[lk] == nil {
				merged[lk] = []string{}
			}
			merged[lk] = append(merged[lk], set(vals, nil)...)
		}
		canon := map[string]any{}
		for k, vals := range merged {
			slices.Sort(vals)
			canon[k] = slices.Compact(vals)
		}
		out[op] = canon
	}
	return out
}

// set turns a string or an array into a sorted, de-duplicated list of strings,
// applying fold (if any) to each element. Scalars become their JSON text
// without quotes, so true == "true" and 1 == "1" (IAM compares condition
// values as strings).
func set(v any, fold func(string) string) []string {
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	out := make([]string, 0, len(list))
	for _, e := range list {
		s, ok := e.(string)
		if !ok {
			s = compact(generic(e)) // json.Number, bool, null and odd values
		}
		if fold != nil {
			s = fold(s)
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// generic normalizes a value whose meaning we do not know: a one-element
// array equals its element (the string-vs-list collapse KMS does), but order
// of longer arrays is kept because it might matter.
func generic(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = generic(e)
		}
		return out
	case []any:
		if len(t) == 1 {
			return generic(t[0])
		}
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = generic(e)
		}
		return out
	default:
		return v
	}
}

// unwrap strips one-element array layers. Specialized normalizers call it
// before looking at a value's type so they agree with generic, which
// unwraps too; otherwise canonicalizing twice could give different results.
func unwrap(v any) any {
	for {
		a, ok := v.([]any)
		if !ok || len(a) != 1 {
			return v
		}
		v = a[0]
	}
}

// compact marshals v to JSON; encoding/json sorts map keys, which is what
// makes the output canonical.
func compact(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only values decoded by encoding/json get here, so this cannot happen.
		panic(fmt.Sprintf("policy: marshal canonical form: %v", err))
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// kind names a decoded JSON value's type for error messages.
func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}
