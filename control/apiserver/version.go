package apiserver

import (
	"strings"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/component-base/compatibility"
	baseversion "k8s.io/component-base/version"
)

// reportedVersion is the library's own effective version with what /version
// reports replaced: clients see the Kubernetes release barge is compatible
// with, and barge's version as build metadata, the way k3s reports itself.
type reportedVersion struct {
	compatibility.MutableEffectiveVersion
	barge string
}

func newReportedVersion(barge string) *reportedVersion {
	return &reportedVersion{
		MutableEffectiveVersion: compatibility.NewEffectiveVersionFromString(baseversion.DefaultKubeBinaryVersion, "", ""),
		barge:                   barge,
	}
}

func (v *reportedVersion) Info() *apimachineryversion.Info {
	info := v.MutableEffectiveVersion.Info()
	if info == nil {
		info = &apimachineryversion.Info{}
	}
	k8s := strings.TrimPrefix(KubernetesVersion, "v")
	parts := strings.SplitN(k8s, ".", 3)
	if len(parts) >= 2 {
		info.Major, info.Minor = parts[0], parts[1]
	}
	// A 1.32 server does not send emulation or compatibility versions, and
	// the library's own (its 1.37 build) would contradict the version above.
	info.EmulationMajor, info.EmulationMinor = "", ""
	info.MinCompatibilityMajor, info.MinCompatibilityMinor = "", ""
	info.GitVersion = KubernetesVersion
	if v.barge != "" {
		info.GitVersion += "+barge-" + strings.ReplaceAll(v.barge, "+", "-")
	}
	info.GitCommit = ""
	info.GitTreeState = ""
	info.BuildDate = ""
	return info
}
