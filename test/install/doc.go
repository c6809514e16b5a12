// Package install holds the tests of the operator's install artifacts: the
// Helm chart in charts/kms-operator, the kustomize install in config/default
// and the Argo CD health script in config/argocd. They need no cluster, only the
// helm binary ($HELM, set by `make test-unit`) and kubectl on PATH.
package install
