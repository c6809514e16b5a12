package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

const policy = `{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}`

// createObjects creates n Keys (rotation, policy, tags) named from first on,
// with an Alias and a Grant each when sets.
func (b *bench) createObjects(ctx context.Context, ns string, first, n int, sets bool) error {
	work := make(chan int)
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				name := fmt.Sprintf("k%05d", first+i)
				objs := []client.Object{&kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
					Spec: kmsv1alpha1.KeySpec{
						Description: "bench", Policy: policy, Tags: map[string]string{"bench": ns},
						Rotation: &kmsv1alpha1.KeyRotation{Enabled: true},
					}}}
				if sets {
					objs = append(objs,
						&kmsv1alpha1.Alias{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
							Spec: kmsv1alpha1.AliasSpec{Name: "alias/" + ns + "/" + name, TargetKeyRef: &kmsv1alpha1.LocalObjectReference{Name: name}}},
						&kmsv1alpha1.Grant{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
							Spec: kmsv1alpha1.GrantSpec{KeyRef: &kmsv1alpha1.LocalObjectReference{Name: name},
								GranteePrincipal: "arn:aws:iam::111122223333:role/bench", Operations: []kmsv1alpha1.GrantOperation{"Decrypt"}}})
				}
				for _, o := range objs {
					if err := b.k8s.Create(ctx, o); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	for i := range n {
		select {
		case work <- i:
		case err := <-errs:
			close(work)
			return err
		}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// waitReady polls the lists (cheap: three LISTs a second) until n objects (3n
// with sets) are Ready for their current generation.
func (b *bench) waitReady(ctx context.Context, ns string, n int, sets bool) error {
	deadline := time.Now().Add(time.Duration(n)*time.Second + 10*time.Minute)
	for time.Now().Before(deadline) {
		ready := 0
		var keys kmsv1alpha1.KeyList
		if err := b.reader.List(ctx, &keys, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
			return err
		}
		for i := range keys.Items {
			ready += isReady(&keys.Items[i])
		}
		want := n
		if sets {
			want = 3 * n
			var aliases kmsv1alpha1.AliasList
			var grants kmsv1alpha1.GrantList
			if err := b.reader.List(ctx, &aliases, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
				return err
			}
			if err := b.reader.List(ctx, &grants, client.InNamespace(ns), client.UnsafeDisableDeepCopy); err != nil {
				return err
			}
			for i := range aliases.Items {
				ready += isReady(&aliases.Items[i])
			}
			for i := range grants.Items {
				ready += isReady(&grants.Items[i])
			}
		}
		if ready == want {
			return nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return fmt.Errorf("not all Ready by the deadline")
}

type conditioned interface {
	client.Object
	GetConditions() []metav1.Condition
}

func isReady(o conditioned) int {
	c := meta.FindStatusCondition(o.GetConditions(), kmsv1alpha1.ConditionReady)
	if c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == o.GetGeneration() {
		return 1
	}
	return 0
}

// cleanup removes the namespaces without waiting for KMS: the finalizers are
// dropped, since the bench platform is purged afterwards anyway.
func (b *bench) cleanup(ctx context.Context, namespaces ...string) error {
	for _, ns := range namespaces {
		if err := b.cleanupNamespace(ctx, ns); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) cleanupNamespace(ctx context.Context, ns string) error {
	drop := func(list client.ObjectList) error {
		if err := b.k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		return meta.EachListItem(list, func(o runtime.Object) error {
			obj := o.(client.Object)
			if len(obj.GetFinalizers()) == 0 {
				return nil
			}
			patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`))
			return client.IgnoreNotFound(b.k8s.Patch(ctx, obj, patch))
		})
	}
	if err := b.k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return err
	}
	for _, l := range []client.ObjectList{&kmsv1alpha1.KeyList{}, &kmsv1alpha1.AliasList{}, &kmsv1alpha1.GrantList{}} {
		if err := drop(l); err != nil {
			return err
		}
	}
	for range 120 {
		if err := b.k8s.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}); apierrors.IsNotFound(err) {
			return nil
		}
		time.Sleep(time.Second)
	}
	return nil
}
