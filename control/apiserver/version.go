package apiserver

import (
	"runtime/debug"
	"strings"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
	basecompatibility "k8s.io/component-base/compatibility"
)

// fallbackKubernetesVersion is used only when the binary carries no
// module information (a stripped build): the version go.mod pins.
const fallbackKubernetesVersion = "v1.37.2"

// KubernetesVersion is the release of k8s.io/kubernetes this binary was
// built with, from the module information Go records: the served API is
// that release's own, so /version says so.
func KubernetesVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "k8s.io/kubernetes" && strings.HasPrefix(dep.Version, "v") {
				return dep.Version
			}
		}
	}
	return fallbackKubernetesVersion
}

// reportedVersion is kube-apiserver's effective version with what
// /version reports filled in: a library build has no linker-stamped git
// version, so the Kubernetes release and barge's version go there as
// k3s reports itself (v1.37.2+barge-0.3.0).
type reportedVersion struct {
	basecompatibility.MutableEffectiveVersion
	gitVersion string
}

func newReportedVersion(barge string) *reportedVersion {
	k8s := KubernetesVersion()
	git := k8s
	if barge != "" {
		git += "+barge-" + strings.NewReplacer("+", "-", " ", "-").Replace(barge)
	}
	return &reportedVersion{
		MutableEffectiveVersion: basecompatibility.NewEffectiveVersionFromString(strings.TrimPrefix(k8s, "v"), "", ""),
		gitVersion:              git,
	}
}

func (v *reportedVersion) Info() *apimachineryversion.Info {
	info := v.MutableEffectiveVersion.Info()
	if info == nil {
		return nil
	}
	info.GitVersion = v.gitVersion
	info.GitCommit, info.GitTreeState, info.BuildDate = "", "", ""
	return info
}
