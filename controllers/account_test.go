package controllers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
	"github.com/kmsoperator/kms-operator/internal/kmsclient/kmsfake"
)

// The account tests: namespace team-a (label team=a) and team-b; AWSAccount
// "payments" (account 222233334444) allows team-a by name, "ledger"
// (333344445555) namespaces labelled team=b, "broken" is not Ready.
const (
	paymentsRole = "arn:aws:iam::222233334444:role/kms-operator"
	ledgerRole   = "arn:aws:iam::333344445555:role/kms-operator"
)

func testAccount(name, role string, ready bool, allowed kmsv1alpha1.AllowedNamespaces) *kmsv1alpha1.AWSAccount {
	a := &kmsv1alpha1.AWSAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name, Generation: 1},
		Spec:       kmsv1alpha1.AWSAccountSpec{RoleARN: role, SessionName: "kms-operator", AllowedNamespaces: allowed},
	}
	status := metav1.ConditionTrue
	if !ready {
		status = metav1.ConditionFalse
	}
	a.Status.Conditions = []metav1.Condition{{Type: kmsv1alpha1.ConditionReady, Status: status, ObservedGeneration: 1,
		Reason: "Test", Message: "trust broken", LastTransitionTime: metav1.Now()}}
	if ready {
		a.Status.AccountID = strings.Split(role, ":")[4]
	}
	return a
}

func testNamespace(name string, labels, annotations map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels, Annotations: annotations}}
}

// newAccountClient is a fake API server with the account tests' world and objs.
func newAccountClient(t *testing.T, defaultAccount string, objs ...client.Object) client.Client {
	t.Helper()
	s := runtime.NewScheme()
	if err := kmsv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := corev1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	var ann map[string]string
	if defaultAccount != "" {
		ann = map[string]string{kmsv1alpha1.AnnotationDefaultAccount: defaultAccount}
	}
	world := []client.Object{
		testNamespace("team-a", map[string]string{"team": "a"}, ann),
		testNamespace("team-b", map[string]string{"team": "b"}, nil),
		testAccount("payments", paymentsRole, true, kmsv1alpha1.AllowedNamespaces{Names: []string{"team-a"}}),
		testAccount("ledger", ledgerRole, true, kmsv1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}}),
		testAccount("broken", ledgerRole, false, kmsv1alpha1.AllowedNamespaces{Names: []string{"team-a", "team-b"}}),
	}
	return fake.NewClientBuilder().WithScheme(s).
		WithStatusSubresource(&kmsv1alpha1.Key{}, &kmsv1alpha1.Alias{}, &kmsv1alpha1.Grant{}, &kmsv1alpha1.AWSAccount{}).
		WithIndex(&kmsv1alpha1.Key{}, keyIDField, indexKeyID).
		WithIndex(&kmsv1alpha1.Key{}, accountField, indexAccount).
		WithIndex(&kmsv1alpha1.Alias{}, accountField, indexAccount).
		WithIndex(&kmsv1alpha1.Grant{}, accountField, indexAccount).
		WithIndex(&kmsv1alpha1.Alias{}, referenceField, indexReference).
		WithIndex(&kmsv1alpha1.Grant{}, referenceField, indexReference).
		WithObjects(append(world, objs...)...).Build()
}

func TestUseAccount(t *testing.T) {
	ref := func(name string) func(*kmsv1alpha1.Key) {
		return func(k *kmsv1alpha1.Key) { k.Spec.AccountRef = &kmsv1alpha1.AccountReference{Name: name} }
	}
	type want struct {
		Account string // status.account
		Reason  string // the refusal's or wait's reason
		SetUp   bool   // the account's clients were set up
	}
	cases := map[string]struct {
		reason         string
		ns             string
		defaultAccount string // team-a's annotation
		key            *kmsv1alpha1.Key
		want           want
		msgHas         string
	}{
		"OwnIdentity": {
			reason: "Without accountRef or a namespace default the operator's own identity is used.",
			key:    newKey(),
		},
		"AccountRef": {
			reason: "A namespace the AWSAccount lists by name uses it.",
			key:    newKey(ref("payments")),
			want:   want{Account: "payments", SetUp: true},
		},
		"NamespaceDefault": {
			reason:         "Without accountRef the namespace's annotation names the account.",
			defaultAccount: "payments",
			key:            newKey(),
			want:           want{Account: "payments", SetUp: true},
		},
		"Selector": {
			reason: "A namespace the AWSAccount selects by label uses it.",
			ns:     "team-b",
			key:    newKey(ref("ledger")),
			want:   want{Account: "ledger", SetUp: true},
		},
		"NotAllowed": {
			reason: "A namespace neither listed nor selected is refused, naming the AWSAccount only.",
			key:    newKey(ref("ledger")),
			want:   want{Reason: kmsv1alpha1.ReasonAccountNotAllowed},
			msgHas: "namespace team-a may not use AWSAccount ledger",
		},
		"Missing": {
			reason: "An AWSAccount that does not exist is refused.",
			key:    newKey(ref("nope")),
			want:   want{Reason: kmsv1alpha1.ReasonAccountNotAllowed},
			msgHas: "AWSAccount nope does not exist",
		},
		"NotReady": {
			reason: "An AWSAccount whose role cannot be assumed is waited for, saying why; the object records its account.",
			key:    newKey(ref("broken")),
			want:   want{Account: "broken", Reason: kmsv1alpha1.ReasonAccountNotReady},
			msgHas: "trust broken",
		},
		"Changed": {
			reason:         "A key made with the operator's own identity does not follow a namespace default added later.",
			defaultAccount: "payments",
			key:            newKey(func(k *kmsv1alpha1.Key) { k.Status.KeyID = "k-1" }),
			want:           want{Reason: kmsv1alpha1.ReasonAccountChanged},
			msgHas:         "the operator's own account",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if tc.ns != "" {
				tc.key.Namespace = tc.ns
			}
			c := newAccountClient(t, tc.defaultAccount)
			p := kmsfake.NewFakeProvider()
			name, err := useAccount(context.Background(), c, Options{KMS: p, Accounts: p}, tc.key)
			got := want{Account: name + tc.key.Status.Account}
			if err != nil {
				f := failureOf(err)
				got.Reason = f.reason
				if !strings.Contains(f.message, tc.msgHas) {
					t.Errorf("%s\nmessage %q does not say %q", tc.reason, f.message, tc.msgHas)
				}
			}
			if got.Account != "" {
				_, ferr := p.For(got.Account, "")
				got.SetUp = ferr == nil
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestKeyInAccount: a Key of an AWSAccount is created in that account, with
// the account's credentials, and says so in status.
func TestKeyInAccount(t *testing.T) {
	key := newKey(func(k *kmsv1alpha1.Key) { k.Spec.AccountRef = &kmsv1alpha1.AccountReference{Name: "payments"} })
	c := newAccountClient(t, "", key)
	p := kmsfake.NewFakeProvider()
	r := &KeyReconciler{Options: Options{KMS: p, Accounts: p, SyncPeriod: keySyncPeriod, ClusterName: keyTestCluster},
		client: c, recorder: events.NewFakeRecorder(100), memory: newKeyMemory()}
	if _, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(key)}); err != nil {
		t.Fatal(err)
	}
	got := &kmsv1alpha1.Key{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(key), got); err != nil {
		t.Fatal(err)
	}
	if got.Status.Account != "payments" || !strings.Contains(got.Status.ARN, ":222233334444:key/") {
		t.Errorf("status account %q, ARN %q; want payments and a key of account 222233334444", got.Status.Account, got.Status.ARN)
	}
	if n := len(p.Fake("").Keys()); n != 0 {
		t.Errorf("%d keys in the operator's own account, want 0", n)
	}
}

// TestAccountReferences: references never cross accounts.
func TestAccountReferences(t *testing.T) {
	other := newKey(func(k *kmsv1alpha1.Key) {
		k.Name = "other"
		k.Status = kmsv1alpha1.KeyStatus{Account: "payments", KeyID: "k-1", ARN: "arn:aws:kms:us-east-1:222233334444:key/k-1"}
	})
	c := newAccountClient(t, "", other)
	p := kmsfake.NewFakeProvider()
	o := Options{KMS: p, Accounts: p, ClusterName: keyTestCluster}
	cases := map[string]struct {
		reason  string
		account string
		ref     *kmsv1alpha1.LocalObjectReference
		raw     string
		msgHas  string
	}{
		"KeyRefOtherAccount": {
			reason: "A Key of another account is refused, though in the same namespace.",
			ref:    &kmsv1alpha1.LocalObjectReference{Name: "other"},
			msgHas: "references cannot cross accounts",
		},
		"ARNOtherAccount": {
			reason:  "A key ARN of another AWS account than the AWSAccount's is refused without a KMS call.",
			account: "payments",
			raw:     "arn:aws:kms:us-east-1:999988887777:key/k-2",
			msgHas:  "is in AWS account 999988887777",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := resolveTarget(context.Background(), c, o, keyTestNS, tc.account, tc.ref, tc.raw)
			var se *specError
			if !errors.As(err, &se) || se.reason != kmsv1alpha1.ReasonReferenceRefused || !strings.Contains(se.msg, tc.msgHas) {
				t.Errorf("%s\ngot %v, want ReferenceRefused saying %q", tc.reason, err, tc.msgHas)
			}
		})
	}
}

func TestAWSAccountReconcile(t *testing.T) {
	type want struct {
		Ready     string
		AccountID string
		Events    []string
	}
	user := newKey(func(k *kmsv1alpha1.Key) { k.Status.Account = "payments"; k.Status.KeyID = "k-1" })
	cases := map[string]struct {
		reason    string
		verifyErr error
		delete    bool
		objs      []client.Object
		want      want
		gone      bool
		msgHas    string
	}{
		"Verified": {
			reason: "A role that can be assumed makes the AWSAccount Ready with the account STS names.",
			want:   want{Ready: "True/Available", AccountID: "222233334444"},
		},
		"TrustBroken": {
			reason:    "A role that cannot be assumed turns the AWSAccount not Ready, saying what to check.",
			verifyErr: &kmsclient.Error{Op: "AssumeRole", Code: "AccessDenied", Class: kmsclient.AccessDenied, Message: "not authorized"},
			want:      want{Ready: "False/AssumeRoleFailed", Events: []string{"Warning AssumeRoleFailed"}},
			msgHas:    "trust policy",
		},
		"DeleteInUse": {
			reason: "A deleted AWSAccount still used by a Key waits, naming the namespace.",
			delete: true,
			objs:   []client.Object{user},
			want:   want{Ready: "False/InUse", Events: []string{"Warning InUse"}},
			msgHas: "namespace(s) team-a",
		},
		"DeleteUnused": {
			reason: "A deleted AWSAccount nobody uses goes.",
			delete: true,
			gone:   true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := newAccountClient(t, "", tc.objs...)
			ctx := context.Background()
			acct := &kmsv1alpha1.AWSAccount{}
			if err := c.Get(ctx, client.ObjectKey{Name: "payments"}, acct); err != nil {
				t.Fatal(err)
			}
			acct.Status = kmsv1alpha1.AWSAccountStatus{}
			if err := c.Status().Update(ctx, acct); err != nil {
				t.Fatal(err)
			}
			acct.Finalizers = []string{kmsv1alpha1.Finalizer}
			if err := c.Update(ctx, acct); err != nil {
				t.Fatal(err)
			}
			if tc.delete {
				if err := c.Delete(ctx, acct); err != nil {
					t.Fatal(err)
				}
			}
			p := kmsfake.NewFakeProvider()
			p.SetAccount("payments", accountConfig(acct))
			p.VerifyErr["payments"] = tc.verifyErr
			rec := events.NewFakeRecorder(10)
			r := &AWSAccountReconciler{Options: Options{KMS: p, Accounts: p, SyncPeriod: time.Minute}, client: c, reader: c, recorder: rec}
			_, _ = r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: "payments"}})
			got := &kmsv1alpha1.AWSAccount{}
			err := c.Get(ctx, client.ObjectKey{Name: "payments"}, got)
			if tc.gone {
				if err == nil {
					t.Errorf("%s\nthe AWSAccount is still there", tc.reason)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotWant := want{Ready: condition(got.Status.Conditions, kmsv1alpha1.ConditionReady), AccountID: got.Status.AccountID, Events: drainEvents(rec)}
			if diff := cmp.Diff(tc.want, gotWant); diff != "" {
				t.Errorf("%s\n(-want +got):\n%s", tc.reason, diff)
			}
			if c := findCondition(got, kmsv1alpha1.ConditionReady); tc.msgHas != "" && (c == nil || !strings.Contains(c.Message, tc.msgHas)) {
				t.Errorf("%s\nReady %+v does not say %q", tc.reason, c, tc.msgHas)
			}
		})
	}
}

func TestOptionsWatches(t *testing.T) {
	cases := map[string]struct {
		watch []string
		ns    string
		want  bool
	}{
		"AllNamespaces":   {ns: "team-a", want: true},
		"Watched":         {watch: []string{"team-a", "team-b"}, ns: "team-b", want: true},
		"NotWatched":      {watch: []string{"team-a"}, ns: "team-c", want: false},
		"ClusterWideName": {watch: []string{"team-a"}, ns: "", want: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := (Options{WatchNamespaces: tc.watch}).watches(tc.ns); got != tc.want {
				t.Errorf("watches(%q) with --watch-namespaces=%v = %v, want %v: an account's users are listed only where the cache holds them", tc.ns, tc.watch, got, tc.want)
			}
		})
	}
}
