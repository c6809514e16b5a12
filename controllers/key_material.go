package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/keymaterial"
	"github.com/kmsoperator/kms-operator/internal/kmsclient"
)

// Imported key material (spec.keyMaterial, origin EXTERNAL). The operator
// never reads material back from KMS, and keeps no record of it: KMS is the
// comparison. When the Secret's resourceVersion differs from the one last
// found in the key (status), the Secret's material is re-imported as the
// key's current material (EXISTING_KEY_MATERIAL with its id): KMS accepts
// the same material and refuses other material (IncorrectKeyMaterial),
// which is then imported as new material (NEW_KEY_MATERIAL) and the key
// rotated to it (RotateKeyOnDemand); the old material stays, NON_CURRENT, to
// decrypt. A lost answer or a crash in between is safe: the material then
// pending rotation is checked the same way before anything is imported again.

// Aspects the material step changes, for events and Synced.
const (
	aspectMaterialImported = "key material imported"
	aspectMaterialRotated  = "key material rotated"
	aspectMaterialExpiry   = "key material expiry"
)

// maxValidTo is how far ahead KMS lets imported material expire.
const maxValidTo = 365 * 24 * time.Hour

// reconcileMaterial imports the Secret's material when the key lacks it
// (never imported, deleted or expired), when the declared expiry differs
// from KMS's, or when the Secret changed; otherwise it costs no call. After
// an import it reads the key again into obs.
func (r *KeyReconciler) reconcileMaterial(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, obs *observed) ([]string, error) {
	src := key.Spec.KeyMaterial
	if src == nil {
		key.Status.KeyMaterial = nil // no longer managed: nothing to report
		return nil, nil
	}
	if key.Spec.Observes() || kmsclient.PendingDeletion(obs.key.State) {
		return nil, nil
	}
	if err := checkValidTo(src.ValidTo); err != nil {
		return nil, err
	}
	version, err := r.secretVersion(ctx, key)
	if err != nil {
		return nil, err
	}
	st, before := key.Status.KeyMaterial, obs.key.ValidTo
	missing := obs.key.State == kmsclient.StatePendingImport
	if !missing && st != nil && st.SecretResourceVersion == version && sameExpiry(src.ValidTo, obs.key.ValidTo) {
		return nil, r.recordMaterials(ctx, api, key, obs, false)
	}
	material, version, err := r.readMaterial(ctx, key)
	if err != nil {
		return nil, err
	}
	defer clear(material)
	imp := &importer{api: api, key: obs.key, material: material, validTo: timeOf(src.ValidTo)}
	applied, err := r.importMaterial(ctx, imp, obs.key)
	if err != nil {
		return applied, err
	}
	if obs.key, err = api.DescribeKey(ctx, obs.key.ID); err != nil {
		return applied, err
	}
	recordObservation(key, obs)
	ms := materialStatus(key)
	ms.SecretResourceVersion = version
	if imp.imports > 0 {
		now := metav1.NewTime(time.Now().UTC().Truncate(time.Second))
		ms.ImportedAt = &now
	}
	switch {
	case len(applied) > 0:
	case missing:
		applied = []string{aspectMaterialImported}
	case !sameExpiry(src.ValidTo, before):
		applied = []string{aspectMaterialExpiry}
	}
	r.eventMaterial(key, applied, missing && st != nil)
	return applied, r.recordMaterials(ctx, api, key, obs, len(applied) > 0)
}

// eventMaterial emits one event for what the material step did. A change of
// the Secret is no drift (the spec names the Secret, not its content);
// material KMS lost (deleted or expired) and imported again is.
func (r *KeyReconciler) eventMaterial(key *kmsv1alpha1.Key, applied []string, restored bool) {
	if len(applied) == 0 {
		return
	}
	ref, id := key.Spec.KeyMaterial.SecretRef, key.Status.KeyID
	switch {
	case applied[0] == aspectMaterialRotated:
		r.event(key, corev1.EventTypeNormal, "KeyMaterialRotated", "RotateKeyOnDemand",
			"KMS key %s rotated to new key material from Secret %s; the old material stays to decrypt", id, ref.Name)
	case restored:
		r.event(key, corev1.EventTypeWarning, "DriftCorrected", "ImportKeyMaterial",
			"the key material of KMS key %s was deleted or had expired; imported again from Secret %s", id, ref.Name)
	default:
		r.event(key, corev1.EventTypeNormal, "KeyMaterialImported", "ImportKeyMaterial", "KMS key %s: %s from Secret %s", id, applied[0], ref.Name)
	}
}

// recordMaterials puts the key's material in status: the current id and
// expiry from the observation and, for symmetric keys, the materials
// ListKeyRotations lists, read only when they may have changed (an import
// here, or another current material than recorded).
func (r *KeyReconciler) recordMaterials(ctx context.Context, api kmsclient.API, key *kmsv1alpha1.Key, obs *observed, changed bool) error {
	ms := materialStatus(key)
	recorded := ms.CurrentKeyMaterialID
	ms.CurrentKeyMaterialID, ms.ValidTo = obs.key.CurrentKeyMaterialID, timeOrNil(obs.key.ValidTo)
	if obs.key.KeySpec != string(kmsv1alpha1.KeySpecSymmetricDefault) || (!changed && ms.Rotations != nil && recorded == ms.CurrentKeyMaterialID) {
		return nil
	}
	materials, err := api.ListKeyMaterials(ctx, obs.key.ID)
	if err != nil {
		return err
	}
	ms.Rotations = make([]kmsv1alpha1.KeyMaterialEntry, 0, len(materials))
	for _, m := range materials {
		ms.Rotations = append(ms.Rotations, kmsv1alpha1.KeyMaterialEntry{
			KeyMaterialID: m.ID, State: m.State, ImportState: m.ImportState,
			RotationDate: timeOrNil(m.RotationDate), ValidTo: timeOrNil(m.ValidTo),
		})
	}
	return nil
}

func materialStatus(key *kmsv1alpha1.Key) *kmsv1alpha1.KeyMaterialStatus {
	if key.Status.KeyMaterial == nil {
		key.Status.KeyMaterial = &kmsv1alpha1.KeyMaterialStatus{}
	}
	return key.Status.KeyMaterial
}

// importMaterial makes the key hold the Secret's material: the first
// import, a re-import of the current material (restoring it, or changing
// its expiry), or new material and a rotation to it.
func (r *KeyReconciler) importMaterial(ctx context.Context, imp *importer, k *kmsclient.Key) ([]string, error) {
	symmetric := k.KeySpec == string(kmsv1alpha1.KeySpecSymmetricDefault)
	if symmetric && k.CurrentKeyMaterialID == "" {
		return []string{aspectMaterialImported}, imp.run(ctx, "", "")
	}
	err := imp.run(ctx, existingType(symmetric), k.CurrentKeyMaterialID)
	switch {
	case err == nil:
		return nil, nil
	case !kmsclient.IsIncorrectKeyMaterial(err):
		return nil, err
	case !symmetric:
		return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"spec.keyMaterial: the Secret holds other material than KMS key %s, and a %s key cannot change its material: put the key's material back in the Secret, or create a new Key", k.ID, k.KeySpec))
	case k.State == kmsclient.StatePendingImport:
		return nil, newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"spec.keyMaterial: the current material %s of KMS key %s was deleted or has expired, and the Secret holds other material: KMS must get the current material back before it can rotate to new material; put it back in the Secret, then the new one",
			k.CurrentKeyMaterialID, k.ID))
	}
	return []string{aspectMaterialRotated}, r.rotateToMaterial(ctx, imp, k)
}

// rotateToMaterial imports the Secret's material as new material and
// rotates the key to it. When KMS refuses the new import, material pending
// rotation explains it: the Secret's own after an attempt whose rotation
// was lost (KMS has it already), or someone else's, which blocks the import
// and is deleted (the spec names the key's material).
func (r *KeyReconciler) rotateToMaterial(ctx context.Context, imp *importer, k *kmsclient.Key) error {
	err := imp.run(ctx, kmsclient.ImportNewMaterial, "")
	if kmsclient.IsIncorrectKeyMaterial(err) || kmsclient.ClassOf(err) == kmsclient.InvalidState {
		err = r.resolvePending(ctx, imp, k)
	}
	if err != nil {
		return err
	}
	return imp.api.RotateOnDemand(ctx, k.ID)
}

// resolvePending makes the Secret's material the one pending rotation: it
// is already (a lost rotation), or the pending material is another and is
// replaced. Material KMS holds but not pending is an earlier one of the key,
// which KMS cannot rotate back to.
func (r *KeyReconciler) resolvePending(ctx context.Context, imp *importer, k *kmsclient.Key) error {
	materials, err := imp.api.ListKeyMaterials(ctx, k.ID)
	if err != nil {
		return err
	}
	pending := ""
	for _, m := range materials {
		if m.State == kmsclient.MaterialPendingRotation {
			pending = m.ID
		}
	}
	if pending != "" {
		err = imp.run(ctx, kmsclient.ImportExistingMaterial, pending)
		if !kmsclient.IsIncorrectKeyMaterial(err) {
			return err // nil: the pending material is the Secret's
		}
		if err := imp.api.DeleteImportedKeyMaterial(ctx, k.ID, pending); err != nil {
			return err
		}
	}
	err = imp.run(ctx, kmsclient.ImportNewMaterial, "")
	if kmsclient.IsIncorrectKeyMaterial(err) {
		return newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"spec.keyMaterial: the Secret holds an earlier material of KMS key %s (status.keyMaterial.rotations): KMS rotates to new material only; put new material in the Secret", k.ID))
	}
	return err
}

func existingType(symmetric bool) string {
	if symmetric {
		return kmsclient.ImportExistingMaterial
	}
	return "" // KMS takes no import type for HMAC and asymmetric keys
}

// importer imports one material into one key, with one set of import
// parameters for every attempt of a reconcile (GetParametersForImport's
// quota is one request a second).
type importer struct {
	api      kmsclient.API
	key      *kmsclient.Key
	material []byte
	validTo  *time.Time
	params   *kmsclient.ImportParameters
	wrapped  []byte
	imports  int // successful imports
}

func (imp *importer) run(ctx context.Context, importType, materialID string) error {
	if imp.params == nil {
		algorithm := keymaterial.WrappingAlgorithm(imp.key.KeySpec)
		params, err := imp.api.GetParametersForImport(ctx, imp.key.ID, algorithm, keymaterial.WrappingKeySpec)
		if err != nil {
			return err
		}
		if imp.wrapped, err = keymaterial.Wrap(algorithm, params.PublicKey, imp.material); err != nil {
			return err
		}
		imp.params = params
	}
	_, err := imp.api.ImportKeyMaterial(ctx, kmsclient.ImportKeyMaterialInput{
		KeyID: imp.key.ID, ImportToken: imp.params.ImportToken, EncryptedKeyMaterial: imp.wrapped,
		ImportType: importType, KeyMaterialID: materialID, ValidTo: imp.validTo,
	})
	if err == nil {
		imp.imports++
	}
	return err
}

// checkValidTo refuses an expiry KMS would refuse: past, or more than 365
// days ahead. CEL has no clock, so admission cannot.
func checkValidTo(v *metav1.Time) error {
	switch {
	case v == nil:
		return nil
	case !v.After(time.Now()):
		return newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"spec.keyMaterial.validTo %s is in the past: KMS would delete the material at once; set a later date, or drop it for material that does not expire", v.UTC().Format(time.RFC3339)))
	case v.After(time.Now().Add(maxValidTo)):
		return newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"spec.keyMaterial.validTo %s is more than 365 days ahead, which KMS refuses", v.UTC().Format(time.RFC3339)))
	}
	return nil
}

// sameExpiry compares a declared expiry with KMS's, to the second.
func sameExpiry(want *metav1.Time, got *time.Time) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	return want.Unix() == got.Unix()
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}
