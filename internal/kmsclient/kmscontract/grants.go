package kmscontract

import (
	"slices"
	"testing"

	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

const (
	service   = "logs.amazonaws.com"
	sourceARN = "arn:aws:logs:us-east-1:111122223333:log-group:contract"
)

func serviceGrant() Case {
	return Case{
		Reason: "A grant to an AWS service principal needs a SourceArn constraint and a retiring principal; it is listed with the service principal as given, and named grants stay idempotent with the new fields; KMS refuses two grantees, two retiring principals and malformed service principals.",
		Run: func(t *testing.T, api kmsclient.API) any {
			k := create(t, api, kmsclient.CreateKeyInput{})
			in := kmsclient.GrantInput{KeyID: k.ID, Name: "svc", GranteeServicePrincipal: service, RetiringServicePrincipal: service,
				Operations: []string{"Encrypt", "Decrypt"}, SourceARN: sourceARN}
			a, errA := api.CreateGrant(ctx, in)
			b, _ := api.CreateGrant(ctx, in)
			other := in
			other.SourceARN = sourceARN + "-2"
			c, _ := api.CreateGrant(ctx, other)
			refused := func(mutate func(*kmsclient.GrantInput)) string {
				bad := in
				mutate(&bad)
				_, err := api.CreateGrant(ctx, bad)
				return class(err)
			}
			errs := []string{
				refused(func(g *kmsclient.GrantInput) { g.SourceARN = "" }),
				refused(func(g *kmsclient.GrantInput) { g.RetiringServicePrincipal = "" }),
				refused(func(g *kmsclient.GrantInput) { g.GranteePrincipal = role }),
				refused(func(g *kmsclient.GrantInput) { g.RetiringPrincipal = role }),
				refused(func(g *kmsclient.GrantInput) { g.GranteeServicePrincipal = "logs" }),
				// KMS allows a SourceArn with a principal ARN as well.
				refused(func(g *kmsclient.GrantInput) {
					g.GranteeServicePrincipal, g.GranteePrincipal, g.Name = "", role, "role"
				}),
			}
			var listed []kmsclient.Grant
			eventually(t, "the grants listed", func() bool {
				grants, _ := api.ListGrants(ctx, k.ID)
				listed = nil
				for _, g := range grants {
					if g.GrantID == a {
						// Ids are the model's own; KMS keeps the order of
						// operations as given, which means nothing.
						g.GrantID, g.KeyID, g.Operations = "", "", slices.Sorted(slices.Values(g.Operations))
						listed = append(listed, g)
					}
				}
				return len(listed) == 1 && slices.ContainsFunc(grants, func(g kmsclient.Grant) bool { return g.GrantID == c })
			})
			return []any{class(errA), a == b, a == c, errs, listed}
		},
		Want: []any{"", true, false, []string{"Invalid", "Invalid", "Invalid", "Invalid", "Invalid", ""}, []kmsclient.Grant{{
			Name: "svc", GranteeServicePrincipal: service, RetiringServicePrincipal: service,
			Operations: []string{"Decrypt", "Encrypt"}, SourceARN: sourceARN,
		}}},
	}
}
