package controllers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

func randomMaterial(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// withMaterial makes team-a/k an EXTERNAL key whose material is entry
// "material" of Secret "km".
func withMaterial(k *kmsv1alpha1.Key) {
	k.Spec.Origin = kmsv1alpha1.OriginExternal
	k.Spec.KeyMaterial = &kmsv1alpha1.KeyMaterialSource{SecretRef: kmsv1alpha1.SecretKeyReference{Name: "km", Key: "material"}}
}

// materialSummary is what a test compares of a key with imported material.
type materialSummary struct {
	State    string   // in KMS
	Ready    string   // condition
	Synced   string   // condition
	Current  bool     // status names KMS's current material
	Versions bool     // status names the Secret's resourceVersion
	History  []string // status.keyMaterial.rotations: state/importState
}

func (e *regionEnv) material(id string) materialSummary {
	e.t.Helper()
	k, s := e.key(), &corev1.Secret{}
	_ = e.c.Get(context.Background(), reqOf(secret("km", "", nil)).NamespacedName, s)
	got := materialSummary{State: e.describe(east, id).State, Ready: condition(k.Status.Conditions, kmsv1alpha1.ConditionReady), Synced: syncedOf(k)}
	if m := k.Status.KeyMaterial; m != nil {
		got.Current = m.CurrentKeyMaterialID != "" && m.CurrentKeyMaterialID == e.describe(east, id).CurrentKeyMaterialID
		got.Versions = m.SecretResourceVersion == s.ResourceVersion
		for _, r := range m.Rotations {
			got.History = append(got.History, r.State+"/"+r.ImportState)
		}
	}
	return got
}

// changeSecret replaces the Secret's entry (nil: only its labels change,
// which moves its resourceVersion like any write).
func (e *regionEnv) changeSecret(material []byte) {
	e.t.Helper()
	s := &corev1.Secret{}
	if err := e.c.Get(context.Background(), reqOf(secret("km", "", nil)).NamespacedName, s); err != nil {
		e.t.Fatal(err)
	}
	if material == nil {
		s.Labels = map[string]string{"touched": time.Now().Format("150405.000000")}
	} else {
		s.Data["material"] = material
	}
	if err := e.c.Update(context.Background(), s); err != nil {
		e.t.Fatal(err)
	}
}

func (e *regionEnv) importCalls() []string {
	var out []string
	for _, c := range e.kms(east).Calls() {
		switch c {
		case "GetParametersForImport", "ImportKeyMaterial", "DeleteImportedKeyMaterial", "RotateKeyOnDemand", "ListKeyRotations":
			out = append(out, c)
		}
	}
	return out
}

var imported = materialSummary{State: "Enabled", Ready: "True/Available", Synced: "True/ReconcileSuccess", Current: true, Versions: true,
	History: []string{"CURRENT/IMPORTED"}}

var rotated = materialSummary{State: "Enabled", Ready: "True/Available", Synced: "True/ReconcileSuccess", Current: true, Versions: true,
	History: []string{"NON_CURRENT/IMPORTED", "CURRENT/IMPORTED"}}

func TestKeyMaterial(t *testing.T) {
	// start creates the key from a Secret holding first and returns its id.
	start := func(t *testing.T, e *regionEnv, first []byte, mutators ...func(*kmsv1alpha1.Key)) string {
		t.Helper()
		createObjects(t, e, newKey(append([]func(*kmsv1alpha1.Key){withMaterial}, mutators...)...), secret("km", "material", first))
		id := e.primaryReady()
		e.resetCalls()
		return id
	}
	runReplicaCases(t, map[string]replicaCase{
		"FirstImport": {
			reason: "A new EXTERNAL key gets the Secret's material (wrapped with RSAES_OAEP_SHA_256) and goes from PendingImport to Enabled in the same reconcile; status names the material and the Secret version, never the material.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newKey(withMaterial), secret("km", "material", randomMaterial(32)))
				e.mustKey()
				id := e.key().Status.KeyID
				return []any{e.importCalls(), e.material(id), drainEvents(e.rec)}
			},
			want: []any{[]string{"GetParametersForImport", "ImportKeyMaterial", "ListKeyRotations"}, imported,
				[]string{"Normal KeyMaterialImported", "Normal Created"}},
		},
		"Unchanged": {
			reason: "While the Secret's resourceVersion is the one recorded, a resync costs no import call.",
			run: func(t *testing.T, e *regionEnv) any {
				id := start(t, e, randomMaterial(32))
				e.mustKey()
				return []any{e.kms(east).Calls(), e.material(id)}
			},
			want: []any{[]string{"DescribeKey", "ListResourceTags"}, imported},
		},
		"SecretWrittenSameMaterial": {
			reason: "A Secret written without a change of material is checked by re-importing it as the current material: accepted, no rotation.",
			run: func(t *testing.T, e *regionEnv) any {
				id := start(t, e, randomMaterial(32))
				e.changeSecret(nil)
				e.mustKey()
				return []any{e.importCalls(), e.material(id), drainEvents(e.rec)}
			},
			want: []any{[]string{"GetParametersForImport", "ImportKeyMaterial"}, imported, []string(nil)},
		},
		"Rotated": {
			reason: "New material in the Secret is refused as the current one, imported as new material and rotated to; the old stays NON_CURRENT to decrypt. One set of import parameters serves both imports.",
			run: func(t *testing.T, e *regionEnv) any {
				id := start(t, e, randomMaterial(32))
				before := e.key().Status.KeyMaterial.CurrentKeyMaterialID
				e.changeSecret(randomMaterial(32))
				e.mustKey()
				return []any{e.importCalls(), e.material(id), e.key().Status.KeyMaterial.CurrentKeyMaterialID != before, drainEvents(e.rec)}
			},
			want: []any{[]string{"GetParametersForImport", "ImportKeyMaterial", "ImportKeyMaterial", "RotateKeyOnDemand", "ListKeyRotations"},
				rotated, true, []string{"Normal KeyMaterialRotated"}},
		},
		"RotationAnswerLost": {
			reason: "A rotation refused by a passing fault leaves the material pending; the next reconcile finds it is the Secret's and rotates, importing nothing new.",
			run: func(t *testing.T, e *regionEnv) any {
				id := start(t, e, randomMaterial(32))
				e.changeSecret(randomMaterial(32))
				e.kms(east).Fail("RotateKeyOnDemand", kmsclient.NewError("RotateKeyOnDemand", kmsclient.Transient, "KMSInternalException", "internal"), 1)
				_, err := e.reconcileKey()
				e.resetCalls()
				e.restart()
				e.mustKey()
				return []any{err != nil, e.importCalls(), e.material(id)}
			},
			want: []any{true, []string{"GetParametersForImport", "ImportKeyMaterial", "ImportKeyMaterial", "ListKeyRotations", "ImportKeyMaterial",
				"RotateKeyOnDemand", "ListKeyRotations"}, rotated},
		},
		"StrayPendingMaterial": {
			reason: "Material pending rotation that is not the Secret's (imported by someone else) would block the import: it is deleted first.",
			run: func(t *testing.T, e *regionEnv) any {
				id := start(t, e, randomMaterial(32))
				importDirect(t, e, id, randomMaterial(32), kmsclient.ImportNewMaterial)
				e.changeSecret(randomMaterial(32))
				e.resetCalls()
				e.mustKey()
				return []any{e.importCalls(), e.material(id)}
			},
			want: []any{[]string{"GetParametersForImport", "ImportKeyMaterial", "ImportKeyMaterial", "ListKeyRotations", "ImportKeyMaterial",
				"DeleteImportedKeyMaterial", "ImportKeyMaterial", "RotateKeyOnDemand", "ListKeyRotations"}, rotated},
		},
		"EarlierMaterial": {
			reason: "A Secret put back to an earlier material of the key is refused: KMS rotates to new material only.",
			run: func(t *testing.T, e *regionEnv) any {
				first := randomMaterial(32)
				id := start(t, e, first)
				e.changeSecret(randomMaterial(32))
				e.mustKey()
				e.changeSecret(first)
				e.mustKey()
				return []any{syncedOf(e.key()), e.kms(east).Count("RotateKeyOnDemand"), e.describe(east, id).State}
			},
			want: []any{"False/InvalidSpec", 1, "Enabled"},
		},
		"DeletedOutOfBand": {
			reason: "Material deleted behind the operator's back is imported again from the Secret, reported as drift.",
			run: func(t *testing.T, e *regionEnv) any {
				id := start(t, e, randomMaterial(32))
				if err := e.kms(east).DeleteImportedKeyMaterial(context.Background(), id, ""); err != nil {
					t.Fatal(err)
				}
				e.resetCalls()
				e.mustKey()
				return []any{e.importCalls(), e.material(id), drainEvents(e.rec)}
			},
			want: []any{[]string{"GetParametersForImport", "ImportKeyMaterial", "ListKeyRotations"}, imported, []string{"Warning DriftCorrected"}},
		},
		"Expired": {
			reason: "A later validTo re-imports the material with it; material that expired meanwhile (by KMS's clock) is restored the same way.",
			run: func(t *testing.T, e *regionEnv) any {
				soon := metav1.NewTime(time.Now().Add(time.Hour).Truncate(time.Second))
				id := start(t, e, randomMaterial(32), func(k *kmsv1alpha1.Key) { k.Spec.KeyMaterial.ValidTo = &soon })
				later := metav1.NewTime(time.Now().Add(48 * time.Hour).Truncate(time.Second))
				e.kms(east).Now = func() time.Time { return time.Now().Add(2 * time.Hour) }
				expired := e.describe(east, id).State
				key := e.key()
				e.update(key, func() { key.Spec.KeyMaterial.ValidTo = &later })
				e.mustKey()
				got := e.material(id)
				return []any{expired, got, e.key().Status.KeyMaterial.ValidTo.Equal(&later)}
			},
			want: []any{"PendingImport", imported, true},
		},
		"PastValidTo": {
			reason: "A validTo in the past is refused before any import (admission has no clock to compare with).",
			run: func(t *testing.T, e *regionEnv) any {
				past := metav1.NewTime(time.Now().Add(-time.Hour))
				createObjects(t, e, newKey(withMaterial, func(k *kmsv1alpha1.Key) { k.Spec.KeyMaterial.ValidTo = &past }), secret("km", "material", randomMaterial(32)))
				e.mustKey()
				return []any{syncedOf(e.key()), e.importCalls()}
			},
			want: []any{"False/InvalidSpec", []string(nil)},
		},
	})
}

// importDirect imports material into key id as someone else would.
func importDirect(t *testing.T, e *regionEnv, id string, material []byte, importType string) {
	t.Helper()
	imp := &importer{api: e.kms(east), key: e.describe(east, id), material: material}
	if err := imp.run(context.Background(), importType, ""); err != nil {
		t.Fatal(err)
	}
}

func TestKeyMaterialSecret(t *testing.T) {
	runReplicaCases(t, map[string]replicaCase{
		"SecretAppearsLater": {
			reason: "A missing Secret is a wait (WaitingForSecret): the key is created and waits PendingImport; the Secret, once there, is imported.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newKey(withMaterial))
				e.mustKey()
				id := e.key().Status.KeyID
				waiting := []any{syncedOf(e.key()), condition(e.key().Status.Conditions, kmsv1alpha1.ConditionReady), e.describe(east, id).State}
				createObjects(t, e, secret("km", "material", randomMaterial(32)))
				e.mustKey()
				return append(waiting, e.material(id))
			},
			want: []any{"False/WaitingForSecret", "False/WaitingForSecret", "PendingImport", imported},
		},
		"EntryMissing": {
			reason: "A Secret without the named entry is a wait too, and says so.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newKey(withMaterial), secret("km", "other", randomMaterial(32)))
				e.mustKey()
				c := findCondition(e.key(), kmsv1alpha1.ConditionSynced)
				return []any{c.Reason, strings.Contains(c.Message, "Secret km has no entry material")}
			},
			want: []any{kmsv1alpha1.ReasonWaitingForSecret, true},
		},
		"WrongMaterial": {
			reason: "Material of the wrong length is refused with its length, never its bytes.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newKey(withMaterial), secret("km", "material", []byte("0123456789")))
				e.mustKey()
				c := findCondition(e.key(), kmsv1alpha1.ConditionSynced)
				return []any{c.Reason, strings.Contains(c.Message, "not 10 bytes"), strings.Contains(c.Message, "0123456789")}
			},
			want: []any{kmsv1alpha1.ReasonInvalidSpec, true, false},
		},
		"OtherNamespace": {
			reason: "The Secret is looked up in the Key's namespace only: one of the same name elsewhere is not used.",
			run: func(t *testing.T, e *regionEnv) any {
				s := secret("km", "material", randomMaterial(32))
				s.Namespace = "team-b"
				createObjects(t, e, newKey(withMaterial), s)
				e.mustKey()
				return syncedOf(e.key())
			},
			want: "False/WaitingForSecret",
		},
		"HMACCannotChange": {
			reason: "An HMAC key takes one material: the same is re-imported, other material is refused with a message, not rotated.",
			run: func(t *testing.T, e *regionEnv) any {
				createObjects(t, e, newKey(withMaterial, func(k *kmsv1alpha1.Key) { k.Spec.KeySpec, k.Spec.KeyUsage = "HMAC_256", "GENERATE_VERIFY_MAC" }),
					secret("km", "material", randomMaterial(32)))
				e.mustKey()
				first := []any{condition(e.key().Status.Conditions, kmsv1alpha1.ConditionReady), e.key().Status.KeyMaterial.CurrentKeyMaterialID}
				e.changeSecret(randomMaterial(32))
				e.mustKey()
				return append(first, syncedOf(e.key()), e.kms(east).Count("RotateKeyOnDemand"))
			},
			want: []any{"True/Available", "", "False/InvalidSpec", 0},
		},
	})
}

// TestKeyMaterialNeverShown: the material reaches KMS wrapped only; status
// and events never hold it, in any encoding.
func TestKeyMaterialNeverShown(t *testing.T) {
	e := newRegionEnv(t)
	first, second := randomMaterial(32), randomMaterial(32)
	createObjects(t, e, newKey(withMaterial), secret("km", "material", first))
	e.mustKey()
	e.changeSecret(second)
	e.mustKey()
	var seen bytes.Buffer
	status, _ := json.Marshal(e.key().Status)
	seen.Write(status)
	for _, ev := range drainEventsFull(e.rec) {
		seen.WriteString(ev)
	}
	for _, m := range [][]byte{first, second} {
		for _, form := range []string{string(m), hex.EncodeToString(m), base64.StdEncoding.EncodeToString(m), base64.RawURLEncoding.EncodeToString(m)} {
			if strings.Contains(seen.String(), form) {
				t.Fatalf("key material found in status or events")
			}
		}
	}
	if seen.Len() == 0 || syncedOf(e.key()) != "True/ReconcileSuccess" {
		t.Fatalf("nothing to look at: %s", seen.String())
	}
}
