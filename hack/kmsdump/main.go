// Command kmsdump prints what KMS holds for the keys the operator manages in
// one namespace: state, description, rotation, tags, grants, and where the
// namespace's declared aliases point. The demo uses it to show KMS's side.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

func main() {
	ns := flag.String("namespace", "default", "namespace whose keys to show")
	flag.Parse()
	if err := dump(context.Background(), *ns); err != nil {
		fmt.Fprintln(os.Stderr, "kmsdump:", err)
		os.Exit(1)
	}
}

func dump(ctx context.Context, ns string) error {
	provider, err := kmsclient.NewProvider(ctx, kmsclient.ProviderOptions{AppID: "kms-operator-kmsdump"})
	if err != nil {
		return err
	}
	kms, err := provider.For("", "")
	if err != nil {
		return err
	}
	found, err := kms.FindKeys(ctx, map[string]string{kmsv1alpha1.TagOwnerNS: ns})
	if err != nil {
		return err
	}
	for _, f := range found {
		id := f.ID
		k, err := kms.DescribeKey(ctx, id)
		if err != nil {
			return err
		}
		fmt.Printf("  key %s\n    state %s, %s/%s, description %q\n", k.ID, k.State, k.KeySpec, k.KeyUsage, k.Description)
		if !kmsclient.PendingDeletion(k.State) && k.KeySpec == "SYMMETRIC_DEFAULT" {
			rot, err := kms.GetRotation(ctx, id)
			if err != nil {
				return err
			}
			fmt.Printf("    rotation enabled=%t period=%dd\n", rot.Enabled, rot.PeriodInDays)
		}
		tags, err := kms.ListTags(ctx, id)
		if err != nil {
			return err
		}
		fmt.Printf("    tags %s\n", formatTags(tags))
		grants, err := kms.ListGrants(ctx, id)
		if err != nil {
			return err
		}
		for _, g := range grants {
			fmt.Printf("    grant %s… name %s to %s: %s\n", g.GrantID[:12], g.Name, g.GranteePrincipal, strings.Join(g.Operations, ","))
		}
	}

	// KMS aliases carry no tags, so the declared names come from Kubernetes
	// and their targets from KMS.
	scheme := runtime.NewScheme()
	if err := kmsv1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	var aliases kmsv1alpha1.AliasList
	if err := c.List(ctx, &aliases, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, a := range aliases.Items {
		got, err := kms.GetAlias(ctx, a.Spec.Name)
		if kmsclient.IsNotFound(err) {
			fmt.Printf("  alias %s: not in KMS\n", a.Spec.Name)
			continue
		}
		if err != nil {
			return err
		}
		fmt.Printf("  alias %s -> key %s\n", got.Name, got.TargetKeyID)
	}
	return nil
}

func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, " ")
}
