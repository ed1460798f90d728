//go:build tools

// Package tools pins the Go modules that build the real Kubernetes control
// plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager,
// kubectl), kwok and the code generators used by this project. Nothing
// here is downloaded prebuilt: hack/build-tools.sh builds each binary from
// these modules into bin/.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
	_ "sigs.k8s.io/kustomize/kustomize/v5"
	_ "sigs.k8s.io/kwok/cmd/kwok"
)
