package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmsfake"
)

// The Alias, Grant and KeyRef tests share one small world: namespace team-a,
// cluster "test", and these KMS keys, created in this order.
const (
	refNS      = "team-a"
	refCluster = "test"
)

var refKeys = []struct {
	sym  string
	tags map[string]string
}{
	{"k1", ownerTags(refNS, "k1", refCluster)},
	{"k2", ownerTags(refNS, "k2", refCluster)},
	{"other-ns", ownerTags("team-b", "k1", refCluster)},
	{"other-cluster", ownerTags(refNS, "k1", "elsewhere")},
	{"unmanaged", nil},
}

func ownerTags(ns, name, cluster string) map[string]string {
	return map[string]string{
		kmsv1alpha1.TagOwnerUID: "uid-" + ns + "-" + name, kmsv1alpha1.TagOwnerNS: ns,
		kmsv1alpha1.TagOwnerName: name, kmsv1alpha1.TagOwnerCluster: cluster,
	}
}

// refWorld is a fake KMS holding refKeys, and what the tests need to name them.
type refWorld struct {
	provider *kmsfake.FakeProvider
	kms      *kmsfake.Fake // the default region
	ids      map[string]string
	arns     map[string]string
	syms     map[string]string // key id -> symbolic name
	grants   map[string]string // symbolic grant name -> grant id, filled by setups
	opts     Options
}

func newRefWorld(t *testing.T) *refWorld {
	t.Helper()
	p := kmsfake.NewFakeProvider()
	w := &refWorld{
		provider: p, kms: p.Fake(""),
		ids: map[string]string{}, arns: map[string]string{}, syms: map[string]string{}, grants: map[string]string{},
		opts: Options{KMS: p, SyncPeriod: time.Hour, ClusterName: refCluster},
	}
	// The world's keys were made long before the test, out of KMS's
	// consistency window.
	w.kms.Now = func() time.Time { return time.Now().Add(-time.Hour) }
	for _, k := range refKeys {
		key, err := w.kms.CreateKey(context.Background(), kmsclient.CreateKeyInput{Tags: k.tags})
		if err != nil {
			t.Fatal(err)
		}
		w.ids[k.sym], w.arns[k.sym], w.syms[key.ID] = key.ID, key.ARN, k.sym
	}
	w.kms.Now = time.Now
	w.kms.ResetCalls()
	return w
}

// keyObject is a Key of refNS whose KMS key is the world's key of the same name.
func (w *refWorld) keyObject(name string) *kmsv1alpha1.Key {
	return &kmsv1alpha1.Key{
		ObjectMeta: metav1.ObjectMeta{Namespace: refNS, Name: name, UID: types.UID("uid-" + refNS + "-" + name)},
		Status:     kmsv1alpha1.KeyStatus{KeyID: w.ids[name], ARN: w.arns[name]},
	}
}

// sym names a key id the way the tests do; "" stays "".
func (w *refWorld) sym(id string) string {
	if s, ok := w.syms[id]; ok || id == "" {
		return s
	}
	return "unknown:" + id
}

func newRefClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := kmsv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).
		WithStatusSubresource(&kmsv1alpha1.Key{}, &kmsv1alpha1.Alias{}, &kmsv1alpha1.Grant{}).
		WithIndex(&kmsv1alpha1.Alias{}, aliasTargetKeyRefField, indexAliasTargetKeyRef).
		WithIndex(&kmsv1alpha1.Alias{}, aliasNameField, indexAliasName).
		WithIndex(&kmsv1alpha1.Grant{}, grantKeyRefField, indexGrantKeyRef).
		WithObjects(objs...).Build()
}

// condition summarises a condition as "Status/Reason".
func condition(conds []metav1.Condition, typ string) string {
	c := meta.FindStatusCondition(conds, typ)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// drainEvents returns the recorded events as "Type Reason".
func drainEvents(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			f := strings.Fields(e)
			out = append(out, f[0]+" "+f[1])
		default:
			return out
		}
	}
}

// markDeleting makes obj look like it was deleted while holding our finalizer.
func markDeleting(obj client.Object) {
	now := metav1.Now()
	obj.SetDeletionTimestamp(&now)
	obj.SetFinalizers([]string{kmsv1alpha1.Finalizer})
}

func TestKeyRefResolve(t *testing.T) {
	type want struct {
		Key    string // symbolic name of the resolved key
		Reason string // condition reason of the refusal or wait
		Calls  []string
	}
	cases := map[string]struct {
		reason     string
		ref        string
		raw        func(w *refWorld) string
		allowUnmgd bool
		want       want
		msgHas     string
	}{
		"KeyRef": {
			reason: "A Key of the same namespace resolves through its status, with no KMS call.",
			ref:    "k1",
			want:   want{Key: "k1"},
		},
		"KeyRefMissing": {
			reason: "A missing Key is a wait, not an error.",
			ref:    "nope",
			want:   want{Reason: kmsv1alpha1.ReasonWaitingForKey},
		},
		"RawSameNamespace": {
			reason: "A raw id of a key owned by a Key of the same namespace is allowed after DescribeKey and ListTags.",
			raw:    func(w *refWorld) string { return w.ids["k1"] },
			want:   want{Key: "k1", Calls: []string{"DescribeKey", "ListResourceTags"}},
		},
		"RawARN": {
			reason: "An ARN resolves to the key id.",
			raw:    func(w *refWorld) string { return w.arns["k2"] },
			want:   want{Key: "k2", Calls: []string{"DescribeKey", "ListResourceTags"}},
		},
		"RawOtherNamespace": {
			reason: "A key owned by a Key in another namespace is refused.",
			raw:    func(w *refWorld) string { return w.ids["other-ns"] },
			want:   want{Reason: kmsv1alpha1.ReasonReferenceRefused, Calls: []string{"DescribeKey", "ListResourceTags"}},
			msgHas: "another namespace",
		},
		"RawOtherCluster": {
			reason: "A key owned by another cluster is refused, even with a matching namespace.",
			raw:    func(w *refWorld) string { return w.ids["other-cluster"] },
			want:   want{Reason: kmsv1alpha1.ReasonReferenceRefused, Calls: []string{"DescribeKey", "ListResourceTags"}},
			msgHas: "another cluster",
		},
		"RawUnmanagedRefused": {
			reason: "A key without ownership tags is refused by default, naming the flag.",
			raw:    func(w *refWorld) string { return w.ids["unmanaged"] },
			want:   want{Reason: kmsv1alpha1.ReasonReferenceRefused, Calls: []string{"DescribeKey", "ListResourceTags"}},
			msgHas: "--allow-unmanaged-key-references",
		},
		"RawUnmanagedAllowed": {
			reason:     "With --allow-unmanaged-key-references a key without ownership tags is allowed.",
			raw:        func(w *refWorld) string { return w.ids["unmanaged"] },
			allowUnmgd: true,
			want:       want{Key: "unmanaged", Calls: []string{"DescribeKey", "ListResourceTags"}},
		},
		"RawFreshWithoutTags": {
			reason: "A key made moments ago without ownership tags may be one whose tags KMS does not list yet: a wait, not a refusal.",
			raw: func(w *refWorld) string {
				key, err := w.kms.CreateKey(context.Background(), kmsclient.CreateKeyInput{})
				if err != nil {
					panic(err)
				}
				w.syms[key.ID] = "fresh"
				return key.ID
			},
			want: want{Reason: kmsv1alpha1.ReasonPropagating, Calls: []string{"DescribeKey", "ListResourceTags"}},
		},
		"RawMissing": {
			reason: "A raw id of no key is reported as NotFound, without retrying hot.",
			raw:    func(*refWorld) string { return "00000000-0000-0000-0000-000000000000" },
			want:   want{Reason: kmsv1alpha1.ReasonNotFound, Calls: []string{"DescribeKey"}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := newRefWorld(t)
			w.opts.AllowUnmanagedKeyReferences = tc.allowUnmgd
			c := newRefClient(t, w.keyObject("k1"))
			var ref *kmsv1alpha1.LocalObjectReference
			var raw string
			if tc.ref != "" {
				ref = &kmsv1alpha1.LocalObjectReference{Name: tc.ref}
			} else {
				raw = tc.raw(w)
				w.kms.ResetCalls()
			}
			target, err := resolveTarget(context.Background(), c, w.opts, refNS, "", ref, raw)
			var got want
			if target != nil {
				got.Key = w.sym(target.id)
			}
			var se *specError
			var pe *propagatingError
			if errors.As(err, &pe) {
				got.Reason = kmsv1alpha1.ReasonPropagating
			} else if errors.As(err, &se) {
				got.Reason = se.reason
				if !strings.Contains(se.msg, tc.msgHas) {
					t.Errorf("%s\nmessage %q does not mention %q", tc.reason, se.msg, tc.msgHas)
				}
			} else if err != nil {
				t.Fatalf("%s\nunexpected error: %v", tc.reason, err)
			}
			got.Calls = w.kms.Calls()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}
