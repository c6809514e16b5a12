package front

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	tagging "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	tagtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"github.com/google/go-cmp/cmp"
)

// resourceARNs pages through GetResources and returns the ARNs and tags
// answered.
func resourceARNs(t *testing.T, c *tagging.Client, in *tagging.GetResourcesInput) map[string]map[string]string {
	t.Helper()
	got := map[string]map[string]string{}
	p := tagging.NewGetResourcesPaginator(c, in)
	for p.HasMorePages() {
		for _, m := range must(p.NextPage(context.Background()))(t).ResourceTagMappingList {
			tm := map[string]string{}
			for _, tg := range m.Tags {
				tm[*tg.Key] = *tg.Value
			}
			got[*m.ResourceARN] = tm
		}
	}
	return got
}

func filter(key string, values ...string) tagtypes.TagFilter {
	return tagtypes.TagFilter{Key: aws.String(key), Values: values}
}

func TestGetResources(t *testing.T) {
	ctx := context.Background()
	s, clients := tenantsServer(t, Options{})
	east := clients["east"]
	key := func(kv ...string) string {
		return *createKey(t, east, &kms.CreateKeyInput{Tags: tags(kv...)}).Arn
	}
	prodA := key("owner", "a", "env", "prod")
	prodB := key("owner", "b", "env", "prod")
	devA := key("owner", "a", "env", "dev")
	key() // untagged
	pending := key("owner", "a")
	must(east.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: &pending}))(t)
	createKey(t, clients["west"], &kms.CreateKeyInput{Tags: tags("owner", "a")})
	createKey(t, clients["other"], &kms.CreateKeyInput{Tags: tags("owner", "a")})

	tests := []struct {
		name string
		in   tagging.GetResourcesInput
		want []string
	}{
		{name: "no filter: every tagged key, pending deletion included", want: []string{prodA, prodB, devA, pending}},
		{name: "one tag", in: tagging.GetResourcesInput{TagFilters: []tagtypes.TagFilter{filter("owner", "a")}},
			want: []string{prodA, devA, pending}},
		{name: "filters are ANDed", in: tagging.GetResourcesInput{TagFilters: []tagtypes.TagFilter{filter("owner", "a"), filter("env", "prod")}},
			want: []string{prodA}},
		{name: "values are ORed", in: tagging.GetResourcesInput{TagFilters: []tagtypes.TagFilter{filter("owner", "a", "b"), filter("env", "prod", "dev")}},
			want: []string{prodA, prodB, devA}},
		{name: "a filter without values matches any value", in: tagging.GetResourcesInput{TagFilters: []tagtypes.TagFilter{filter("env")}},
			want: []string{prodA, prodB, devA}},
		{name: "no match", in: tagging.GetResourcesInput{TagFilters: []tagtypes.TagFilter{filter("owner", "c")}}},
		{name: "kms type", in: tagging.GetResourcesInput{ResourceTypeFilters: []string{"kms"}, TagFilters: []tagtypes.TagFilter{filter("env", "dev")}},
			want: []string{devA}},
		{name: "kms:key type", in: tagging.GetResourcesInput{ResourceTypeFilters: []string{"s3", "kms:key"}, TagFilters: []tagtypes.TagFilter{filter("env", "dev")}},
			want: []string{devA}},
		{name: "other types", in: tagging.GetResourcesInput{ResourceTypeFilters: []string{"s3", "kms:alias"}}},
		{name: "one a page", in: tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(1)}, want: []string{prodA, prodB, devA, pending}},
		{name: "two a page", in: tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(2), TagFilters: []tagtypes.TagFilter{filter("owner", "a")}},
			want: []string{prodA, devA, pending}},
		{name: "by ARN", in: tagging.GetResourcesInput{ResourceARNList: []string{prodB, devA}}, want: []string{prodB, devA}},
	}
	c := s.taggingAs("us-east-1", "local")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := resourceARNs(t, c, &tt.in)
			if diff := cmp.Diff(slices.Sorted(slices.Values(tt.want)), slices.Sorted(maps.Keys(got))); diff != "" {
				t.Errorf("ARNs (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("tags and pages", func(t *testing.T) {
		out := must(c.GetResources(ctx, &tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(3)}))(t)
		if len(out.ResourceTagMappingList) != 3 || aws.ToString(out.PaginationToken) == "" {
			t.Fatalf("first page of 3: %d resources, token %q", len(out.ResourceTagMappingList), aws.ToString(out.PaginationToken))
		}
		last := must(c.GetResources(ctx, &tagging.GetResourcesInput{ResourcesPerPage: aws.Int32(3), PaginationToken: out.PaginationToken}))(t)
		if len(last.ResourceTagMappingList) != 1 || aws.ToString(last.PaginationToken) != "" {
			t.Errorf("last page: %d resources, token %q; want 1 and \"\"", len(last.ResourceTagMappingList), aws.ToString(last.PaginationToken))
		}
		all := resourceARNs(t, c, &tagging.GetResourcesInput{})
		if diff := cmp.Diff(map[string]string{"owner": "a", "env": "prod"}, all[prodA]); diff != "" {
			t.Errorf("tags of %s (-want +got):\n%s", prodA, diff)
		}
	})
	t.Run("other tenants", func(t *testing.T) {
		for name, tc := range map[string]*tagging.Client{"west": s.taggingAs("us-west-2", "local"), "other": s.taggingAs("us-east-1", "AKIDOTHER")} {
			if got := resourceARNs(t, tc, &tagging.GetResourcesInput{}); len(got) != 1 {
				t.Errorf("%s: %v, want its own key", name, got)
			}
		}
	})
	t.Run("changes after the first call", func(t *testing.T) {
		// The first calls built the tag index; writes since must show.
		must(east.TagResource(ctx, &kms.TagResourceInput{KeyId: &devA, Tags: tags("team", "x")}))(t)
		must(east.UntagResource(ctx, &kms.UntagResourceInput{KeyId: &prodB, TagKeys: []string{"owner", "env"}}))(t)
		newer := key("team", "x")
		got := resourceARNs(t, c, &tagging.GetResourcesInput{TagFilters: []tagtypes.TagFilter{filter("team", "x")}})
		if diff := cmp.Diff(slices.Sorted(slices.Values([]string{devA, newer})), slices.Sorted(maps.Keys(got))); diff != "" {
			t.Errorf("tagged since (-want +got):\n%s", diff)
		}
		if _, ok := resourceARNs(t, c, &tagging.GetResourcesInput{})[prodB]; ok {
			t.Errorf("%s lost all its tags but is still listed", prodB)
		}
	})
	t.Run("invalid parameters", func(t *testing.T) {
		for name, in := range map[string]*tagging.GetResourcesInput{
			"0 a page":   {ResourcesPerPage: aws.Int32(0)},
			"101 a page": {ResourcesPerPage: aws.Int32(101)},
			"bad token":  {PaginationToken: aws.String("!!")},
			"no key":     {TagFilters: []tagtypes.TagFilter{{Values: []string{"a"}}}},
		} {
			if _, err := c.GetResources(ctx, in); errCode(err) != "InvalidParameterException" {
				t.Errorf("%s: %v, want InvalidParameterException", name, err)
			}
		}
	})
}

func TestGetResourcesLag(t *testing.T) {
	ctx := context.Background()
	onAndOff(t, 5*time.Second, func(t *testing.T, lag time.Duration) {
		s, clock, c := consistencyServer(t, Consistency{TaggingAPILag: Duration(lag)})
		tc := s.taggingAs(testRegion, "local")
		read := func(t *testing.T) any { return resourceARNs(t, tc, &tagging.GetResourcesInput{}) }
		arn := *createKey(t, c, &kms.CreateKeyInput{Tags: tags("owner", "a")}).Arn
		created := map[string]map[string]string{arn: {"owner": "a"}}
		want := map[bool]any{true: map[string]map[string]string{}, false: created}[lag > 0]
		if diff := cmp.Diff(want, read(t)); diff != "" {
			t.Errorf("right after CreateKey (-want +got):\n%s", diff)
		}
		clock.Advance(lag)
		if diff := cmp.Diff(created, read(t)); diff != "" {
			t.Errorf("CreateKey settled (-want +got):\n%s", diff)
		}
		runSteps(t, clock, lag, read, []step{{
			name: "TagResource",
			do: func(t *testing.T) {
				must(c.TagResource(ctx, &kms.TagResourceInput{KeyId: &arn, Tags: tags("owner", "b")}))(t)
			},
			now: map[string]map[string]string{arn: {"owner": "a"}}, settled: map[string]map[string]string{arn: {"owner": "b"}},
		}, {
			name: "UntagResource",
			do: func(t *testing.T) {
				must(c.UntagResource(ctx, &kms.UntagResourceInput{KeyId: &arn, TagKeys: []string{"owner"}}))(t)
			},
			now: map[string]map[string]string{arn: {"owner": "b"}}, settled: map[string]map[string]string{},
		}})
	})
}

func TestGetResourcesQuotasAndFaults(t *testing.T) {
	ctx := context.Background()
	s := newTestServer(t)
	c := s.taggingAs(testRegion, "local")
	s.configure(t, Config{Quota: map[string]int{"GetResources": 1}})
	must(c.GetResources(ctx, &tagging.GetResourcesInput{}))(t)
	if _, err := c.GetResources(ctx, &tagging.GetResourcesInput{}); errCode(err) != "ThrottledException" {
		t.Errorf("over quota: %v, want ThrottledException", err)
	}
	if got := s.counts(t)["GetResources"]; got != (opCount{Requests: 2, Errors: 1, Throttled: 1}) {
		t.Errorf("counts %+v", got)
	}
	s.configure(t, Config{Faults: []Fault{{Op: "GetResources", Kind: FaultInternal, Rate: 1}}})
	if _, err := c.GetResources(ctx, &tagging.GetResourcesInput{}); errCode(err) != "InternalServiceException" {
		t.Errorf("internal fault: %v, want InternalServiceException", err)
	}
}
