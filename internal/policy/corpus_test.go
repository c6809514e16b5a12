package policy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	awspolicy "github.com/hashicorp/awspolicyequivalence"
)

// verdict is what an implementation says about a pair of policies.
type verdict string

const (
	same    verdict = "equal"
	differ  verdict = "differ"
	refused verdict = "error" // a policy is not a valid document
)

func verdictOf(eq bool, err error) verdict {
	switch {
	case err != nil:
		return refused
	case eq:
		return same
	}
	return differ
}

// disagreements lists every pair of both corpora on which our Equal and
// awspolicyequivalence's PoliciesAreEquivalent give different verdicts, keyed
// by corpus and case name, with which verdict is right for KMS key policies
// and why. TestCorpora fails on a disagreement missing here and on an entry
// that no longer disagrees, so a change of either side is reviewed.
var disagreements = map[string]struct{ ours, library verdict }{
	// Ours is right: IAM documents the Effect value as case sensitive, so
	// "allow" is not "Allow" (KMS refuses it, and Validate does too).
	"awspolicyequivalence/Casing of Effect": {differ, same},
	// The same Effect casing is the only difference here: ours handles the
	// single statement vs array part (see "Statement object vs one-element
	// array" in our corpus).
	"awspolicyequivalence/Single Statement vs []Statement": {differ, same},
	// Effect casing again, and empty principal maps or lists vs no Principal.
	// Ours is right: KMS requires a principal in every key policy statement,
	// so none of these can come back from GetKeyPolicy, and "differ" sends
	// the spec to PutKeyPolicy, whose error the user then sees (see "empty
	// Principal lists vs no Principal" in our corpus).
	"awspolicyequivalence/Empty Principal set":                                                  {differ, same},
	"awspolicyequivalence/Empty Principals sets of different types have the same effect":        {differ, same},
	"awspolicyequivalence/Empty Principal and missing Principal have the same effect":           {differ, same},
	"awspolicyequivalence/Principal with empty sets and missing Principal have the same effect": {differ, same},
	// "Principal": "123456789012" is not IAM grammar (a string Principal can
	// only be "*"), so KMS refuses it and never returns it: ours is right to
	// not read it as an account.
	"awspolicyequivalence/Principal with string root IAM user matches account ID": {differ, same},
	// The library matches a bare account id with the root ARN of any
	// partition, here the placeholder "arn:PARTITION:..."; ours, with the
	// default partition "aws", expects arn:aws:iam::123456789012:root, which
	// is what KMS returns in aws (with InPartition("PARTITION") ours says
	// equal). KMS writes the root ARN in the key's own partition, so ours is
	// right given that partition; see "ours in partitions/" below.
	"awspolicyequivalence/Principal with map string root IAM user matches account ID":         {differ, same},
	"awspolicyequivalence/Principal with map array single root IAM user matches account ID":   {differ, same},
	"awspolicyequivalence/Principal with map array multiple root IAM user matches account ID": {differ, same},
	// The library reads "[...]" as a list of policies (IAM assume-role
	// pseudo-JSON) and "" as "{}". Ours is right to refuse both: a key
	// policy is one JSON object, KMS refuses anything else, GetKeyPolicy
	// always returns one, and the operator compares only a non-empty spec
	// policy (an empty one leaves the key's policy alone).
	"awspolicyequivalence/Different empty lists":    {refused, same},
	"awspolicyequivalence/Equivalence of emptiness": {refused, same},

	// Ours is right: IAM matches action names case-insensitively
	// ("kms:Encrypt" is "KMS:encrypt"); the library would report drift after
	// a case-only edit and rewrite an unchanged policy.
	"ours/Action case": {same, differ},
	// Ours is right: a repeated value, principal or statement grants nothing
	// more. The library compares list lengths, so if KMS ever de-duplicated
	// what it stores, it would rewrite the policy at every resync.
	"ours/duplicated actions":                      {same, differ},
	"ours/NotResource order and duplicates":        {same, differ},
	"ours/Principal AWS list order and duplicates": {same, differ},
	"ours/duplicated statement":                    {same, differ},
	// Ours is right: IAM documents "*" and {"AWS": "*"} as the same principal
	// (everyone), and KMS serves no anonymous requests, so the two mean the
	// same in a key policy; the library compares them as different shapes.
	`ours/Principal "*" vs {"AWS":"*"}`:   {same, differ},
	`ours/Principal "*" vs {"AWS":["*"]}`: {same, differ},
	// Ours is right (see the case): invalid either way in a key policy, and
	// "differ" lets PutKeyPolicy report it.
	"ours/empty Principal lists vs no Principal": {differ, same},
	// Ours is right: IAM condition key names are case insensitive.
	"ours/condition key case": {same, differ},
	// The library ignores the partition of a root ARN, which gives the right
	// answer for every policy KMS can hold without being told the partition:
	// each partition has its own IAM, and resource policies grant only
	// within it, so a key policy names principals of the key's partition
	// only. Ours needs the key's partition (InPartition(PartitionOf(keyARN)));
	// without it, a bare account id in aws-cn differs from what KMS stores:
	// the resync loop InPartition exists to end. Given the partition, ours
	// is right and stricter: an aws root ARN in an aws-cn spec names no
	// principal of that IAM, so "differ" sends it to PutKeyPolicy, which
	// reports it, instead of calling it in sync.
	"ours in partitions/aws-cn: not the aws root ARN (KMS writes the key's partition)":                          {differ, same},
	"ours in partitions/default is aws: not the aws-cn root ARN (the resync loop in China without InPartition)": {differ, same},
	// The library does not validate: it reads an empty document, "null" and
	// an array as "{}" and says they differ from a real policy. Ours
	// refuses them, which is right for a key policy (see above); for the
	// operator both mean "not in sync", and the update reports the error.
	"ours errors/empty":           {refused, differ},
	"ours errors/whitespace only": {refused, differ},
	"ours errors/array":           {refused, differ},
	"ours errors/null":            {refused, differ},
}

// corpusPair is a pair of policies from either corpus.
type corpusPair struct {
	name string // corpus/case
	a, b string
	opts []Option // for ours; the library has no options
}

func TestCorpora(t *testing.T) {
	var pairs []corpusPair
	for _, c := range loadUpstreamCorpus(t) {
		// The corpus must hold the library to its own expectations, or it
		// was not read right.
		want := verdictOf(c.equivalent, nil)
		if c.err {
			want = refused
		}
		if got := verdictOf(awspolicy.PoliciesAreEquivalent(c.policy1, c.policy2)); got != want {
			t.Errorf("upstream case %q: library says %s, its test expects %s", c.name, got, want)
		}
		pairs = append(pairs, corpusPair{"awspolicyequivalence/" + c.name, c.policy1, c.policy2, nil})
	}
	for _, c := range equalCases {
		pairs = append(pairs, corpusPair{"ours/" + c.reason, c.a, c.b, nil})
	}
	for _, c := range partitionCases {
		pairs = append(pairs, corpusPair{"ours in partitions/" + c.reason, c.a, c.b, c.opts})
	}
	for _, c := range equalErrorCases {
		pairs = append(pairs, corpusPair{"ours errors/" + c.reason, c.a, c.b, nil})
	}

	type verdicts struct{ Ours, Library verdict }
	got := map[string]verdicts{}
	for _, p := range pairs {
		ours := verdictOf(Equal(p.a, p.b, p.opts...))
		lib := verdictOf(awspolicy.PoliciesAreEquivalent(p.a, p.b))
		if ours != lib {
			got[p.name] = verdicts{ours, lib}
		}
	}
	want := map[string]verdicts{}
	for name, d := range disagreements {
		want[name] = verdicts{d.ours, d.library}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("disagreements between Equal and awspolicyequivalence changed (-listed +found); "+
			"decide which is right for KMS and record it in disagreements:\n%s", diff)
	}
}

// upstreamCase is one case of awspolicyequivalence's TestPolicyEquivalence.
type upstreamCase struct {
	name             string
	policy1, policy2 string
	equivalent, err  bool
}

// upstreamCorpus is the verbatim copy of awspolicyequivalence's test file
// (MPL-2.0; see testdata/awspolicyequivalence/README.md).
const upstreamCorpus = "testdata/awspolicyequivalence/aws_policy_equivalence_test.go"

// loadUpstreamCorpus reads the case table of TestPolicyEquivalence from the
// upstream test file, resolving the string constants its cases name.
func loadUpstreamCorpus(t *testing.T) []upstreamCase {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), upstreamCorpus, nil, 0)
	if err != nil {
		t.Fatalf("parse %s: %v", upstreamCorpus, err)
	}
	consts := map[string]string{}
	var table *ast.CompositeLit
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			return n.Name.Name == "TestPolicyEquivalence" // skip other tests' tables
		case *ast.ValueSpec:
			for i, name := range n.Names {
				if lit, ok := n.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					consts[name.Name] = unquote(t, lit.Value)
				}
			}
		case *ast.AssignStmt:
			if id, ok := n.Lhs[0].(*ast.Ident); ok && id.Name == "cases" {
				table, _ = n.Rhs[0].(*ast.CompositeLit)
			}
		}
		return true
	})
	if table == nil {
		t.Fatalf("%s: no cases table in TestPolicyEquivalence", upstreamCorpus)
	}
	var cases []upstreamCase
	for _, elt := range table.Elts {
		var c upstreamCase
		for _, field := range elt.(*ast.CompositeLit).Elts {
			kv := field.(*ast.KeyValueExpr)
			key := kv.Key.(*ast.Ident).Name
			switch key {
			case "name":
				c.name = unquote(t, kv.Value.(*ast.BasicLit).Value)
			case "policy1", "policy2":
				id := kv.Value.(*ast.Ident).Name
				p, ok := consts[id]
				if !ok {
					t.Fatalf("%s: case %q: %s names unknown constant %s", upstreamCorpus, c.name, key, id)
				}
				if key == "policy1" {
					c.policy1 = p
				} else {
					c.policy2 = p
				}
			case "equivalent":
				c.equivalent = kv.Value.(*ast.Ident).Name == "true"
			case "err":
				c.err = kv.Value.(*ast.Ident).Name == "true"
			default:
				t.Fatalf("%s: case %q: unknown field %s", upstreamCorpus, c.name, key)
			}
		}
		cases = append(cases, c)
	}
	return cases
}

func unquote(t *testing.T, lit string) string {
	t.Helper()
	s, err := strconv.Unquote(lit)
	if err != nil {
		t.Fatalf("%s: unquote %s: %v", upstreamCorpus, lit, err)
	}
	return s
}
