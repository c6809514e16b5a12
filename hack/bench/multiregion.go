package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
)

// The multi-Region and imported-material scenarios: KMS calls per
// ReplicaKey created (its primary Key already Ready, so the primary's own
// re-reads when its replicas change are counted with the replica), and per
// Key whose material is imported from a Secret, then per rotation of that
// material. Sizes are small: these paths are about calls, not throughput.

// replicaRegion is where the scenario's replicas go; the primaries are in
// the KMS server's default region.
const replicaRegion = "eu-west-1"

// extraScenario runs one of these scenarios and records its rows; an error
// is a failed row.
func (b *bench) extraScenario(ctx context.Context, name string, n int, run func(ctx context.Context, ns string) error, sync time.Duration) int {
	ns := fmt.Sprintf("bench-%s-%d-%d", map[bool]string{true: "mr", false: "im"}[name == replicaScenario], n, time.Now().Unix()%100000)
	fmt.Printf("== %s, N=%d (namespace %s)\n", name, n, ns)
	err := b.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	var op *operatorProc
	if err == nil {
		op, err = b.startOperator(ns, sync, "--kms-quota-share=0")
	}
	if err == nil {
		first := len(b.rows)
		err = run(ctx, ns)
		if err != nil {
			err = fmt.Errorf("%w (operator log: %s)", err, op.log)
		}
		rss, cpu := op.usage()
		for i := first; i < len(b.rows); i++ {
			b.rows[i].rssMiB, b.rows[i].cpuSec = rss, cpu
		}
		op.stop()
	}
	if err == nil {
		err = b.cleanupExtra(ctx, ns)
	}
	if err != nil {
		b.rows = append(b.rows, row{scenario: name, n: n, note: "FAILED: " + err.Error()})
		fmt.Println("  " + err.Error())
		return 1
	}
	return 0
}

const (
	replicaScenario = "create ReplicaKeys (primaries settled)"
	importScenario  = "create Keys with imported material"
	rotateScenario  = "rotate imported material (Secret changed)"
)

// replicas creates n multi-Region Keys, waits for them, then measures the
// creation of one ReplicaKey each.
func (b *bench) replicas(n int) func(ctx context.Context, ns string) error {
	return func(ctx context.Context, ns string) error {
		for i := range n {
			k := &kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%03d", i)},
				Spec: kmsv1alpha1.KeySpec{MultiRegion: true, Description: "bench primary", Tags: map[string]string{"bench": ns}}}
			if err := b.k8s.Create(ctx, k); err != nil {
				return err
			}
		}
		if err := b.waitAll(ctx, ns, n, &kmsv1alpha1.KeyList{}); err != nil {
			return err
		}
		// Past the KMS server's realistic staleAfterWrite (2 s), a young
		// primary answers ReplicateKey NotFound and the replica retries: the
		// row shows what a replica of a settled primary costs.
		time.Sleep(3 * time.Second)
		return b.measureStep(replicaScenario, n, func() error {
			for i := range n {
				r := &kmsv1alpha1.ReplicaKey{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("p%03d-eu", i)},
					Spec: kmsv1alpha1.ReplicaKeySpec{PrimaryKeyRef: &kmsv1alpha1.LocalObjectReference{Name: fmt.Sprintf("p%03d", i)},
						Region: replicaRegion, Description: "bench replica", Tags: map[string]string{"bench": ns}}}
				if err := b.k8s.Create(ctx, r); err != nil {
					return err
				}
			}
			return b.waitAll(ctx, ns, n, &kmsv1alpha1.ReplicaKeyList{})
		})
	}
}

// imports creates n EXTERNAL Keys, each with its material in a Secret, and
// measures their creation; then it changes every Secret and measures the
// rotations.
func (b *bench) imports(n int) func(ctx context.Context, ns string) error {
	return func(ctx context.Context, ns string) error {
		err := b.measureStep(importScenario, n, func() error {
			for i := range n {
				name := fmt.Sprintf("x%03d", i)
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{"material": material()}}
				k := &kmsv1alpha1.Key{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: kmsv1alpha1.KeySpec{
					Origin: kmsv1alpha1.OriginExternal, Description: "bench imported",
					KeyMaterial: &kmsv1alpha1.KeyMaterialSource{SecretRef: kmsv1alpha1.SecretKeyReference{Name: name, Key: "material"}}}}
				if err := b.k8s.Create(ctx, s); err != nil {
					return err
				}
				if err := b.k8s.Create(ctx, k); err != nil {
					return err
				}
			}
			return b.waitAll(ctx, ns, n, &kmsv1alpha1.KeyList{})
		})
		if err != nil {
			return err
		}
		before := map[string]string{}
		var keys kmsv1alpha1.KeyList
		if err := b.k8s.List(ctx, &keys, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, k := range keys.Items {
			before[k.Name] = k.Status.KeyMaterial.CurrentKeyMaterialID
		}
		return b.measureStep(rotateScenario, n, func() error {
			for i := range n {
				s := &corev1.Secret{}
				if err := b.k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("x%03d", i)}, s); err != nil {
					return err
				}
				s.Data["material"] = material()
				if err := b.k8s.Update(ctx, s); err != nil {
					return err
				}
			}
			return b.waitRotated(ctx, ns, before)
		})
	}
}

func material() []byte {
	m := make([]byte, 32)
	_, _ = rand.Read(m)
	return m
}

// measureStep runs step and records its time and KMS calls as one row.
func (b *bench) measureStep(name string, n int, step func() error) error {
	before, err := b.counts()
	if err != nil {
		return err
	}
	start := time.Now()
	if err := step(); err != nil {
		return err
	}
	r := row{scenario: name, n: n, ready: time.Since(start)}
	if r.calls, r.throttled, err = b.callsSince(before); err != nil {
		return err
	}
	b.rows = append(b.rows, r)
	fmt.Printf("  all Ready in %s; KMS calls per object: %s\n", r.ready.Round(100*time.Millisecond), perObject(r))
	return nil
}

// waitAll waits until n objects of list's kind in ns are Ready.
func (b *bench) waitAll(ctx context.Context, ns string, n int, list client.ObjectList) error {
	deadline := time.Now().Add(time.Duration(n)*time.Second + 5*time.Minute)
	for time.Now().Before(deadline) {
		if err := b.reader.List(ctx, list, client.InNamespace(ns)); err != nil {
			return err
		}
		ready := 0
		_ = meta.EachListItem(list, func(o runtime.Object) error {
			ready += isReady(o.(conditioned))
			return nil
		})
		if ready == n {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("not all Ready by the deadline")
}

// waitRotated waits until every Key of ns names other current material than
// before, and is Ready.
func (b *bench) waitRotated(ctx context.Context, ns string, before map[string]string) error {
	deadline := time.Now().Add(time.Duration(len(before))*time.Second + 5*time.Minute)
	for time.Now().Before(deadline) {
		var keys kmsv1alpha1.KeyList
		if err := b.reader.List(ctx, &keys, client.InNamespace(ns)); err != nil {
			return err
		}
		done := 0
		for i, k := range keys.Items {
			if m := k.Status.KeyMaterial; m != nil && m.CurrentKeyMaterialID != before[k.Name] && isReady(&keys.Items[i]) == 1 {
				done++
			}
		}
		if done == len(before) {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("not all rotated by the deadline")
}

// cleanupExtra drops the ReplicaKeys' finalizers too, then cleans up as the
// other scenarios do.
func (b *bench) cleanupExtra(ctx context.Context, ns string) error {
	var replicas kmsv1alpha1.ReplicaKeyList
	if err := b.k8s.List(ctx, &replicas, client.InNamespace(ns)); err != nil {
		return err
	}
	for i := range replicas.Items {
		patch := client.RawPatch("application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`))
		if err := client.IgnoreNotFound(b.k8s.Patch(ctx, &replicas.Items[i], patch)); err != nil {
			return err
		}
	}
	return b.cleanup(ctx, ns)
}
