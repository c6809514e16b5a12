package front

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/servicequotas"
	sqtypes "github.com/aws/aws-sdk-go-v2/service/servicequotas/types"
	"github.com/google/go-cmp/cmp"
)

// quotasAs is a Service Quotas client of s for region, signing with
// accessKey.
func (s *server) quotasAs(region, accessKey string) *servicequotas.Client {
	return servicequotas.NewFromConfig(awsConfig(region, accessKey), func(o *servicequotas.Options) { o.BaseEndpoint = aws.String(s.http.URL) })
}

// allQuotas pages through ListServiceQuotas, by name.
func allQuotas(t *testing.T, c *servicequotas.Client, in *servicequotas.ListServiceQuotasInput) map[string]sqtypes.ServiceQuota {
	t.Helper()
	got := map[string]sqtypes.ServiceQuota{}
	p := servicequotas.NewListServiceQuotasPaginator(c, in)
	for p.HasMorePages() {
		for _, q := range must(p.NextPage(context.Background()))(t).Quotas {
			got[*q.QuotaName] = q
		}
	}
	return got
}

func TestListServiceQuotas(t *testing.T) {
	ctx := context.Background()
	opts := Options{}
	opts.Config.Quota = map[string]int{"CreateKey": 12}
	opts.Config.AccessKeys = map[string]string{"AKIDOTHER": otherAccount}
	opts.Config.ServiceQuotasAccessDenied = []string{otherAccount}
	s := startWith(t, opts, nil)
	east := s.quotasAs("us-east-1", "local")

	quotas := allQuotas(t, east, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("kms"), MaxResults: aws.Int32(7)})
	if len(quotas) != len(kmsQuotas) {
		t.Errorf("%d quotas, want %d", len(quotas), len(kmsQuotas))
	}
	values := map[string]float64{}
	for _, name := range []string{"CreateKey request rate", "DescribeKey request rate", "Cryptographic operations (symmetric) request rate", "GenerateDataKeyPair (RSA_2048) request rate"} {
		values[name] = *quotas[name].Value
	}
	want := map[string]float64{
		"CreateKey request rate":                            12, // configured
		"DescribeKey request rate":                          2000,
		"Cryptographic operations (symmetric) request rate": 100000, // us-east-1
		"GenerateDataKeyPair (RSA_2048) request rate":       20,
	}
	if diff := cmp.Diff(want, values); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	sym := quotas["Cryptographic operations (symmetric) request rate"]
	if *sym.QuotaCode != "L-6E3AF000" || *sym.QuotaArn != "arn:aws:servicequotas:us-east-1:111122223333:kms/L-6E3AF000" ||
		*sym.ServiceCode != "kms" || *sym.Unit != "None" || !sym.Adjustable || sym.GlobalQuota {
		t.Errorf("symmetric quota %+v", sym)
	}

	t.Run("by quota code", func(t *testing.T) {
		one := must(east.ListServiceQuotas(ctx, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("kms"), QuotaCode: aws.String("L-2AC98190")}))(t)
		if len(one.Quotas) != 1 || *one.Quotas[0].QuotaName != "Cryptographic operations (RSA) request rate" {
			t.Errorf("quotas %+v", one.Quotas)
		}
	})
	t.Run("quotas=aws applies the server's defaults", func(t *testing.T) {
		cfg := s.front.Config()
		cfg.Quotas, cfg.Quota = QuotasAWS, nil
		s.configure(t, cfg)
		q := allQuotas(t, s.quotasAs("eu-north-1", "local"), &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("kms")})
		if got := *q["Cryptographic operations (symmetric) request rate"].Value; got != float64(awsQuotas[cryptoQuota]) {
			t.Errorf("symmetric quota %v, want the enforced %d", got, awsQuotas[cryptoQuota])
		}
		if got := *q["CreateKey request rate"].Value; got != 5 {
			t.Errorf("CreateKey quota %v, want 5", got)
		}
		if got := s.counts(t)["ListServiceQuotas"]; got.Requests != 1 {
			t.Errorf("counts %+v, want one ListServiceQuotas", got)
		}
	})

	tests := []struct {
		name     string
		client   *servicequotas.Client
		in       servicequotas.ListServiceQuotasInput
		wantLen  int
		wantCode string
	}{
		{"another service", east, servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("ec2")}, 0, ""},
		{"an account denied", s.quotasAs("us-east-1", "AKIDOTHER"), servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("kms")}, 0, "AccessDeniedException"},
		{"a bad token", east, servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("kms"), NextToken: aws.String("x")}, 0, "InvalidPaginationTokenException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := tt.client.ListServiceQuotas(ctx, &tt.in)
			if errCode(err) != tt.wantCode {
				t.Fatalf("err %v, want %q", err, tt.wantCode)
			}
			if err == nil && len(out.Quotas) != tt.wantLen {
				t.Errorf("%d quotas, want %d", len(out.Quotas), tt.wantLen)
			}
		})
	}

	t.Run("quotas and faults apply", func(t *testing.T) {
		s.configure(t, Config{Quota: map[string]int{"ListServiceQuotas": 1}})
		_, _ = east.ListServiceQuotas(ctx, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("ec2")})
		_, err := east.ListServiceQuotas(ctx, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("ec2")})
		if errCode(err) != "TooManyRequestsException" {
			t.Errorf("over quota: %v, want TooManyRequestsException", err)
		}
		s.configure(t, Config{Faults: []Fault{{Op: "ListServiceQuotas", Kind: FaultInternal, Rate: 1}}})
		if _, err := east.ListServiceQuotas(ctx, &servicequotas.ListServiceQuotasInput{ServiceCode: aws.String("ec2")}); errCode(err) != "ServiceException" {
			t.Errorf("injected fault: %v, want ServiceException", err)
		}
	})
}
