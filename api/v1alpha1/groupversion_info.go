// Package v1alpha1 holds the kms.kmsoperator.io/v1alpha1 API: Key, ReplicaKey, Alias, Grant and AWSAccount.
// +kubebuilder:object:generate=true
// +groupName=kms.kmsoperator.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "kms.kmsoperator.io", Version: "v1alpha1"}

	// SchemeBuilder uses apimachinery's builder: controller-runtime's
	// pkg/scheme.Builder is deprecated in v0.24.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Key{}, &KeyList{},
		&Alias{}, &AliasList{},
		&Grant{}, &GrantList{},
		&AWSAccount{}, &AWSAccountList{},
		&ReplicaKey{}, &ReplicaKeyList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
