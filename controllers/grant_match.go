package controllers

import (
	"maps"
	"slices"
	"strings"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// Which grants on a key are this object's, and whether they match its spec.
// A grant is ours by the id recorded in status, or by its name together with
// exactly the declared parameters, never by a user-chosen name alone: another
// tool's grant of the same name must survive. The default name
// (kms-operator-<uid>) is derived from this object's UID, so it alone is ours.

// verdict is how a listed grant compares with the spec.
type verdict int

const (
	differs verdict = iota
	matches
	// unknownYet: everything matches but a principal KMS shows as a unique id
	// (AROA..., AIDA...) where the spec has an ARN. KMS does that for a while
	// after an IAM role is created (aws-sdk-go issue 1718; Terraform's
	// aws_kms_grant waits for ARNs): it is not a difference.
	unknownYet
)

// grantsFound are ours among the grants on a key.
type grantsFound struct {
	current string   // the grant matching the spec, preferring the recorded one
	stale   []string // ours, not matching the spec: to revoke once the current one exists
	unsure  bool     // the current grant's principal is not shown as an ARN yet
}

// sortGrants finds ours among the grants on a key and sorts them.
func sortGrants(grants []kmsclient.Grant, want kmsclient.GrantInput, recordedID string, defaultName bool) grantsFound {
	var found grantsFound
	for _, gr := range grants {
		recorded := recordedID != "" && gr.GrantID == recordedID
		v := compareGrant(gr, want)
		switch {
		case v == matches || (v == unknownYet && recorded):
			// Only the recorded grant may be current while its principal is
			// not known yet: anyone's grant could show a unique id.
			found.unsure = found.unsure || v == unknownYet
			if found.current == "" || recorded {
				if found.current != "" {
					found.stale = append(found.stale, found.current)
				}
				found.current = gr.GrantID
			} else {
				found.stale = append(found.stale, gr.GrantID)
			}
		case v == differs && (recorded || (defaultName && gr.Name == want.Name)):
			found.stale = append(found.stale, gr.GrantID)
		}
	}
	return found
}

// compareGrant compares a listed grant with the spec: the name, grantee and
// retiring principals, operations as a set, the constraints (absent and
// empty are the same).
func compareGrant(gr kmsclient.Grant, want kmsclient.GrantInput) verdict {
	if gr.Name != want.Name || gr.SourceARN != want.SourceARN ||
		!slices.Equal(slices.Sorted(slices.Values(gr.Operations)), slices.Sorted(slices.Values(want.Operations))) ||
		!maps.Equal(gr.EncryptionContextSubset, want.EncryptionContextSubset) ||
		!maps.Equal(gr.EncryptionContextEquals, want.EncryptionContextEquals) {
		return differs
	}
	grantee := compareGrantee(gr.GranteePrincipal, gr.GranteeServicePrincipal, want.GranteePrincipal, want.GranteeServicePrincipal)
	retiring := compareGrantee(gr.RetiringPrincipal, gr.RetiringServicePrincipal, want.RetiringPrincipal, want.RetiringServicePrincipal)
	switch {
	case grantee == differs || retiring == differs:
		return differs
	case grantee == unknownYet || retiring == unknownYet:
		return unknownYet
	}
	return matches
}

// compareGrantee compares a grantee (or retiring principal) as listed with
// the declared one, each an IAM principal or a service principal. KMS lists
// a service principal as given, never as a unique id, and a grant made for
// one carries it in its own field: beside it, whatever the principal field
// shows is a display value that says nothing more.
func compareGrantee(listed, listedService, declared, declaredService string) verdict {
	switch {
	case declaredService != "":
		return same(listedService == declaredService)
	case listedService != "":
		return differs
	}
	return comparePrincipal(listed, declared)
}

func same(equal bool) verdict {
	if equal {
		return matches
	}
	return differs
}

// comparePrincipal compares an IAM principal as ListGrants shows it with the
// declared one.
func comparePrincipal(listed, declared string) verdict {
	switch {
	case listed == declared:
		return matches
	case strings.HasPrefix(declared, "arn:") && listed != "" && !strings.HasPrefix(listed, "arn:"):
		return unknownYet
	}
	return differs
}

// ownGrant reports whether a listed grant is this object's (see above), for
// the deletion, which revokes every one.
func ownGrant(gr kmsclient.Grant, want kmsclient.GrantInput, recorded map[string]bool, defaultName bool) bool {
	return recorded[gr.GrantID] || (defaultName && gr.Name == want.Name) || compareGrant(gr, want) == matches
}

// grantName is the grant's name in KMS: stable for the object's lifetime.
func grantName(g *kmsv1alpha1.Grant) string {
	if g.Spec.Name != "" {
		return g.Spec.Name
	}
	return defaultGrantName(g)
}

func defaultGrantName(g *kmsv1alpha1.Grant) string { return "kms-operator-" + string(g.UID) }

func grantInput(g *kmsv1alpha1.Grant, keyID string) kmsclient.GrantInput {
	in := kmsclient.GrantInput{
		KeyID:                    keyID,
		Name:                     grantName(g),
		GranteePrincipal:         g.Spec.GranteePrincipal,
		GranteeServicePrincipal:  g.Spec.GranteeServicePrincipal,
		RetiringPrincipal:        g.Spec.RetiringPrincipal,
		RetiringServicePrincipal: g.Spec.RetiringServicePrincipal,
	}
	for _, op := range g.Spec.Operations {
		in.Operations = append(in.Operations, string(op))
	}
	if c := g.Spec.Constraints; c != nil {
		in.EncryptionContextSubset, in.EncryptionContextEquals, in.SourceARN = c.EncryptionContextSubset, c.EncryptionContextEquals, c.SourceArn
	}
	return in
}
