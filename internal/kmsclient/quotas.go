package kmsclient

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
)

// quotaSuffix ends the name of every KMS request-rate quota in Service
// Quotas: "CreateKey request rate" is CreateKey's. The quota codes (L-...)
// are not documented for most operations, so names are what is matched.
const quotaSuffix = " request rate"

// serviceQuotasAPI is the part of the Service Quotas client this package uses.
type serviceQuotasAPI interface {
	ListServiceQuotas(context.Context, *servicequotas.ListServiceQuotasInput, ...func(*servicequotas.Options)) (*servicequotas.ListServiceQuotasOutput, error)
}

var _ serviceQuotasAPI = (*servicequotas.Client)(nil)

// appliedQuotas reads an account's applied KMS request quotas in the client's
// region: AWS's defaults, or what the account had raised. Operations the
// operator does not call are left out.
func appliedQuotas(ctx context.Context, c serviceQuotasAPI) (map[string]float64, error) {
	quotas := map[string]float64{}
	pages := servicequotas.NewListServiceQuotasPaginator(c, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("kms")})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, classify("ListServiceQuotas", err)
		}
		for _, q := range page.Quotas {
			op, ok := strings.CutSuffix(aws.ToString(q.QuotaName), quotaSuffix)
			if _, known := DefaultQuotas[op]; ok && known && q.Value != nil {
				quotas[op] = *q.Value
			}
		}
	}
	return quotas, nil
}
