//go:build e2e

package e2e

// Many AWS accounts from one operator: two AWSAccounts (roles in accounts
// 222233334444 and 333344445555 that trust the operator's own account), three
// namespaces. The KMS server's STS assumes the roles; the access key of each
// request selects the account.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

const (
	roleA     = "arn:aws:iam::222233334444:role/e2e-kms-operator"
	roleB     = "arn:aws:iam::333344445555:role/e2e-kms-operator"
	accountA  = "222233334444"
	accountB  = "333344445555"
	externalB = "e2e-external-id"
)

// accountsConfig is the KMS server configuration with the two roles: role A
// trusts trustA, role B the operator's account with an external id.
func accountsConfig(trustA string, extra string) string {
	return fmt.Sprintf(`{"roles":[{"arn":%q,"trust":[%q]},{"arn":%q,"trust":["111122223333"],"externalID":%q}]%s}`,
		roleA, trustA, roleB, externalB, extra)
}

// accountsEnv is the test's namespaces, AWSAccounts and operator.
type accountsEnv struct {
	nsA, nsB, nsC string // A defaults to account A; B is selected by account B's label; C is allowed by none
	acctA, acctB  *kmsv1alpha1.AWSAccount
	op            *operator
}

func newAccountsEnv(t *testing.T) *accountsEnv {
	t.Helper()
	setKMSConfig(t, accountsConfig("111122223333", ""))
	e := &accountsEnv{nsA: "e2e-acct-a-" + runID, nsB: "e2e-acct-b-" + runID, nsC: "e2e-acct-c-" + runID}
	label := map[string]string{"e2e-team": "b-" + runID}
	e.acctA = &kmsv1alpha1.AWSAccount{ObjectMeta: metav1.ObjectMeta{Name: "e2e-a-" + runID}, Spec: kmsv1alpha1.AWSAccountSpec{
		RoleARN: roleA, AllowedNamespaces: kmsv1alpha1.AllowedNamespaces{Names: []string{e.nsA}}}}
	e.acctB = &kmsv1alpha1.AWSAccount{ObjectMeta: metav1.ObjectMeta{Name: "e2e-b-" + runID}, Spec: kmsv1alpha1.AWSAccountSpec{
		RoleARN: roleB, ExternalID: externalB, AllowedNamespaces: kmsv1alpha1.AllowedNamespaces{Selector: &metav1.LabelSelector{MatchLabels: label}}}}
	namespaces := []*corev1.Namespace{
		{ObjectMeta: metav1.ObjectMeta{Name: e.nsA, Annotations: map[string]string{kmsv1alpha1.AnnotationDefaultAccount: e.acctA.Name}}},
		{ObjectMeta: metav1.ObjectMeta{Name: e.nsB, Labels: label}},
		{ObjectMeta: metav1.ObjectMeta{Name: e.nsC}},
	}
	for _, ns := range namespaces {
		create(t, ns)
	}
	create(t, e.acctA)
	create(t, e.acctB)
	e.op = newOperator("accounts", "--watch-namespaces="+e.nsA+","+e.nsB+","+e.nsC, "--max-concurrent-reconciles=8")
	if err := e.op.start(); err != nil {
		t.Fatal(err)
	}
	// Cleanups run last registered first: the objects go while the operator
	// runs, then the AWSAccounts, then the operator and the namespaces.
	t.Cleanup(func() {
		e.op.stop()
		for _, ns := range namespaces {
			_ = k8s.Delete(context.Background(), ns)
		}
	})
	// Each waits until what it deleted is gone: an AWSAccount stays while
	// objects use it, and every operator of the suite verifies every
	// AWSAccount that stays (AssumeRole calls the later tests would count).
	t.Cleanup(func() {
		for _, a := range []*kmsv1alpha1.AWSAccount{e.acctA, e.acctB} {
			_ = k8s.Delete(context.Background(), a)
		}
		eventually(t, "the AWSAccounts to be gone", func() (bool, string) {
			var l kmsv1alpha1.AWSAccountList
			if err := k8s.List(context.Background(), &l); err != nil {
				return false, err.Error()
			}
			left := 0
			for _, a := range l.Items {
				if a.Name == e.acctA.Name || a.Name == e.acctB.Name {
					left++
				}
			}
			return left == 0, fmt.Sprintf("%d left", left)
		})
	})
	t.Cleanup(func() {
		ctx := context.Background()
		for _, ns := range []string{e.nsA, e.nsB, e.nsC} {
			_ = k8s.DeleteAllOf(ctx, &kmsv1alpha1.Alias{}, client.InNamespace(ns))
			_ = k8s.DeleteAllOf(ctx, &kmsv1alpha1.Key{}, client.InNamespace(ns))
		}
		_ = putKMSConfig(accountsConfig("111122223333", ""))
		eventually(t, "the accounts' Keys and Aliases to be gone", func() (bool, string) {
			left := 0
			for _, ns := range []string{e.nsA, e.nsB, e.nsC} {
				var keys kmsv1alpha1.KeyList
				var aliases kmsv1alpha1.AliasList
				if err := errors.Join(k8s.List(ctx, &keys, client.InNamespace(ns)), k8s.List(ctx, &aliases, client.InNamespace(ns))); err != nil {
					return false, err.Error()
				}
				left += len(keys.Items) + len(aliases.Items)
			}
			return left == 0, fmt.Sprintf("%d left", left)
		})
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("operator accounts log (last 60 lines):\n%s", e.op.tail(60))
		}
	})
	return e
}

// accountAPI is a KMS client acting in an account through its role, as a
// person checking the operator's work would use.
func accountAPI(t *testing.T, role, externalID string) kmsclient.API {
	t.Helper()
	p, err := kmsclient.NewProvider(context.Background(), kmsclient.ProviderOptions{AppID: "kms-operator-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	p.SetAccount("check", kmsclient.AccountConfig{RoleARN: role, ExternalID: externalID, SessionName: "e2e-check", SessionDuration: time.Hour})
	api, err := p.For("check", "")
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// TestAccounts: each namespace's Keys land in the right account; a namespace
// not allowed and a cross-account ARN are refused; an AWSAccount whose trust
// is broken and then fixed recovers its objects; credentials expiring during
// the run cause no failed reconcile; an AWSAccount in use is not deleted.
func TestAccounts(t *testing.T) {
	explainFailure(t)
	e := newAccountsEnv(t)
	waitReady(t, e.acctA)
	waitReady(t, e.acctB)
	if e.acctA.Status.AccountID != accountA || e.acctB.Status.AccountID != accountB || e.acctA.Status.CredentialsExpiry == nil {
		t.Errorf("AWSAccount status: %+v and %+v; want accounts %s and %s with an expiry", e.acctA.Status, e.acctB.Status, accountA, accountB)
	}

	kA := newKey(e.nsA, "in-a") // the namespace's default
	kB := newKey(e.nsB, "in-b", func(k *kmsv1alpha1.Key) { k.Spec.AccountRef = &kmsv1alpha1.AccountReference{Name: e.acctB.Name} })
	kC := newKey(e.nsC, "refused", func(k *kmsv1alpha1.Key) { k.Spec.AccountRef = &kmsv1alpha1.AccountReference{Name: e.acctA.Name} })
	for _, k := range []*kmsv1alpha1.Key{kA, kB, kC} {
		create(t, k)
	}
	waitReady(t, kA)
	waitReady(t, kB)

	t.Run("keys land in their accounts", func(t *testing.T) {
		for _, c := range []struct {
			key     *kmsv1alpha1.Key
			account string
			role    string
			extID   string
		}{{kA, accountA, roleA, ""}, {kB, accountB, roleB, externalB}} {
			if !strings.Contains(c.key.Status.ARN, ":"+c.account+":key/") {
				t.Errorf("Key %s: ARN %s, want one of account %s", c.key.Name, c.key.Status.ARN, c.account)
			}
			if _, err := accountAPI(t, c.role, c.extID).DescribeKey(context.Background(), c.key.Status.KeyID); err != nil {
				t.Errorf("Key %s: not found with account %s's credentials: %v", c.key.Name, c.account, err)
			}
			if _, err := kms.DescribeKey(context.Background(), c.key.Status.KeyID); !kmsclient.IsNotFound(err) {
				t.Errorf("Key %s: the operator's own account has it too (%v)", c.key.Name, err)
			}
		}
	})

	t.Run("namespace not allowed", func(t *testing.T) {
		waitCondition(t, kC, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonAccountNotAllowed)
		if msg := conditionOf(kC, kmsv1alpha1.ConditionSynced).Message; !strings.Contains(msg, e.acctA.Name) || strings.Contains(msg, accountA) {
			t.Errorf("message %q: want the AWSAccount named, not its account id", msg)
		}
	})

	t.Run("cross-account ARN", func(t *testing.T) {
		a := newAlias(e.nsB, "cross", aliasName("cross-account"), func(a *kmsv1alpha1.Alias) {
			a.Spec.AccountRef = &kmsv1alpha1.AccountReference{Name: e.acctB.Name}
			a.Spec.TargetKeyID = kA.Status.ARN
		})
		create(t, a)
		waitCondition(t, a, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonReferenceRefused)
	})

	t.Run("quotas per account", func(t *testing.T) {
		setKMSConfig(t, accountsConfig("111122223333", `,"quotas":"aws"`))
		start := time.Now()
		const n = 12
		var wg sync.WaitGroup
		for _, ns := range []string{e.nsA, e.nsB} {
			wg.Go(func() {
				for i := range n {
					k := newKey(ns, fmt.Sprintf("paced-%02d", i), func(k *kmsv1alpha1.Key) {
						if ns == e.nsB {
							k.Spec.AccountRef = &kmsv1alpha1.AccountReference{Name: e.acctB.Name}
						}
					})
					if err := k8s.Create(context.Background(), k); err != nil {
						t.Error(err)
					}
				}
			})
		}
		wg.Wait()
		for _, ns := range []string{e.nsA, e.nsB} {
			for i := range n {
				waitReady(t, newKey(ns, fmt.Sprintf("paced-%02d", i)))
			}
		}
		first, last := createKeySpan(t, start)
		rate := float64(2*n-1) / last.Sub(first).Seconds()
		t.Logf("%d CreateKey in two accounts in %s: %.1f/s together", 2*n, last.Sub(first).Round(10*time.Millisecond), rate)
		for _, acct := range []string{accountA, accountB} {
			if c := accountCounts(t, acct)["CreateKey"]; c.Throttled != 0 {
				t.Errorf("account %s: %d CreateKey throttled, want 0", acct, c.Throttled)
			}
		}
		// Each account is paced at 0.8 x 5/s on its own: together they go
		// faster than one account's quota allows.
		if rate <= 5 {
			t.Errorf("CreateKey at %.1f/s across both accounts, want more than one account's 5/s", rate)
		}
		setKMSConfig(t, accountsConfig("111122223333", ""))
	})

	t.Run("trust broken then fixed", func(t *testing.T) {
		setKMSConfig(t, accountsConfig("999999999999", ""))
		waitCondition(t, e.acctA, kmsv1alpha1.ConditionReady, metav1.ConditionFalse, kmsv1alpha1.ReasonAssumeRoleFailed)
		waitCondition(t, kA, kmsv1alpha1.ConditionSynced, metav1.ConditionFalse, kmsv1alpha1.ReasonAccountNotReady)
		setKMSConfig(t, accountsConfig("111122223333", ""))
		waitReady(t, e.acctA)
		waitCondition(t, kA, kmsv1alpha1.ConditionSynced, metav1.ConditionTrue, "")
		waitReady(t, kA)
	})

	t.Run("credentials expire during the run", func(t *testing.T) {
		jump := time.Now()
		// The server's clock jumps past every session's expiry: the next
		// KMS call with cached credentials gets ExpiredTokenException.
		setKMSConfig(t, accountsConfig("111122223333", `,"clockOffset":"2h"`))
		deadline := time.Now().Add(4 * parseDuration(t, syncPeriod))
		for time.Now().Before(deadline) {
			k := mustGet(t, newKey(e.nsA, kA.Name))
			if c := conditionOf(k, kmsv1alpha1.ConditionSynced); c == nil || c.Status != metav1.ConditionTrue {
				t.Fatalf("Key %s not Synced after the credentials expired: %+v", k.Name, c)
			}
			time.Sleep(250 * time.Millisecond)
		}
		setKMSConfig(t, accountsConfig("111122223333", ""))
		// Verifying the AWSAccount never swaps the credentials in use, so
		// the Key's first resync after the jump meets the expired token.
		if n := len(kmsRequests(t, jump, func(r kmsRequest) bool { return r.ErrorCode == "ExpiredTokenException" })); n == 0 {
			t.Error("no KMS request met the expired credentials: the test proved nothing")
		}
	})

	t.Run("deletion waits while in use", func(t *testing.T) {
		remove(t, e.acctB)
		waitCondition(t, e.acctB, kmsv1alpha1.ConditionReady, metav1.ConditionFalse, kmsv1alpha1.ReasonInUse)
		if msg := conditionOf(e.acctB, kmsv1alpha1.ConditionReady).Message; !strings.Contains(msg, e.nsB) {
			t.Errorf("message %q does not name namespace %s", msg, e.nsB)
		}
		ctx := context.Background()
		_ = k8s.DeleteAllOf(ctx, &kmsv1alpha1.Alias{}, client.InNamespace(e.nsB))
		_ = k8s.DeleteAllOf(ctx, &kmsv1alpha1.Key{}, client.InNamespace(e.nsB))
		waitGone(t, e.acctB)
	})
}

// kmsRequest is one request the KMS server served (GET /_requests).
type kmsRequest struct {
	Time      time.Time `json:"time"`
	Operation string    `json:"operation"`
	Account   string    `json:"account"`
	Status    int       `json:"status"`
	ErrorCode string    `json:"errorCode"`
}

// kmsRequests are the requests the KMS server served since start (by the
// real clock) that match keep.
func kmsRequests(t *testing.T, start time.Time, keep func(kmsRequest) bool) []kmsRequest {
	t.Helper()
	resp, err := http.Get(kmsServerURL("/_requests"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all, out []kmsRequest
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatal(err)
	}
	for _, r := range all {
		if !r.Time.Before(start) && keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// createKeySpan is the time of the first and the last CreateKey the KMS
// server answered since start.
func createKeySpan(t *testing.T, start time.Time) (first, last time.Time) {
	t.Helper()
	creates := kmsRequests(t, start, func(r kmsRequest) bool { return r.Operation == "CreateKey" && r.Status == http.StatusOK })
	if len(creates) < 2 {
		t.Fatalf("%d CreateKey since %s", len(creates), start)
	}
	return creates[0].Time, creates[len(creates)-1].Time
}

// accountCounts reads the KMS server's counts of one account.
func accountCounts(t *testing.T, account string) kmsStats {
	t.Helper()
	resp, err := http.Get(kmsServerURL("/_counts?account=" + account))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	s := kmsStats{}
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func parseDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
