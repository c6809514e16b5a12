package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kmsv1alpha1 "github.com/kmsoperator/kms-operator/api/v1alpha1"
	"github.com/kmsoperator/kms-operator/internal/keymaterial"
)

// The key material of an EXTERNAL Key comes from a Secret of the Key's own
// namespace, never another's. The operator watches Secrets' metadata only
// (a change of resourceVersion wakes the Keys naming the Secret) and reads
// a Secret's data straight from the API server when it imports, so no
// Secret data stays in its cache or memory. The material reaches KMS only
// wrapped, and never status, events, logs or metrics: errors describe its
// form, not its bytes.

// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

// keySecretField indexes Keys by the Secret holding their key material.
const keySecretField = ".spec.keyMaterial.secretRef.name"

func indexKeySecret(o client.Object) []string {
	if m := o.(*kmsv1alpha1.Key).Spec.KeyMaterial; m != nil {
		return []string{m.SecretRef.Name}
	}
	return nil
}

// secretVersion is the resourceVersion of the key's Secret, from the
// metadata cache: no data is read to find out whether it changed.
func (r *KeyReconciler) secretVersion(ctx context.Context, key *kmsv1alpha1.Key) (string, error) {
	ref := key.Spec.KeyMaterial.SecretRef
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	err := r.client.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: ref.Name}, m)
	if apierrors.IsNotFound(err) {
		return "", waitingForSecret(key, "Secret %s does not exist", ref.Name)
	}
	return m.ResourceVersion, err
}

// readMaterial reads the key material from the Secret, straight from the
// API server, checks it against the key spec and returns it with the
// Secret's resourceVersion. The caller clears the material after use.
func (r *KeyReconciler) readMaterial(ctx context.Context, key *kmsv1alpha1.Key) ([]byte, string, error) {
	ref := key.Spec.KeyMaterial.SecretRef
	var s corev1.Secret
	err := r.reader.Get(ctx, client.ObjectKey{Namespace: key.Namespace, Name: ref.Name}, &s)
	if apierrors.IsNotFound(err) {
		return nil, "", waitingForSecret(key, "Secret %s does not exist", ref.Name)
	}
	if err != nil {
		return nil, "", err
	}
	data, ok := s.Data[ref.Key]
	if !ok {
		return nil, "", waitingForSecret(key, "Secret %s has no entry %s", ref.Name, ref.Key)
	}
	material, err := keymaterial.Parse(string(key.Spec.EffectiveKeySpec()), data)
	if err != nil {
		clear(s.Data[ref.Key])
		return nil, "", newSpecError(kmsv1alpha1.ReasonInvalidSpec, fmt.Sprintf("spec.keyMaterial: Secret %s entry %s: %v", ref.Name, ref.Key, err))
	}
	return material, s.ResourceVersion, nil
}

// waitingForSecret: the Key waits for its Secret (or the entry in it); the
// Secret watch brings it back when it appears.
func waitingForSecret(key *kmsv1alpha1.Key, format string, args ...any) error {
	return newSpecError(kmsv1alpha1.ReasonWaitingForSecret, fmt.Sprintf("waiting for key material: "+format+" in namespace %s (spec.keyMaterial.secretRef)",
		append(args, key.Namespace)...))
}
