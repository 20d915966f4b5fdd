package agent_test

import (
	"context"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/barge-dev/barge/node/agent"
	"github.com/barge-dev/barge/node/containerdtest"
	"github.com/barge-dev/barge/node/image"
	"github.com/barge-dev/barge/raftstore/pki"
)

// testContainerdRestart restarts the containerd under a node (its own
// daemon: the harness's shared one serves every other subtest): the
// running pod keeps its container and process, a container that exits
// while containerd is down has its exit recorded once containerd is
// back, and the agent, which never restarted, starts a new pod.
func testContainerdRestart(t *testing.T, h *harness) {
	ctrd := containerdtest.Start(t)
	if err := image.WriteHostsConfig(ctrd.HostsDir, h.registry, filepath.Join(h.api.Store.CertsDir, pki.CACertFile)); err != nil {
		t.Fatal(err)
	}
	h.startNode(t, "n3", func(c *agent.Config) {
		c.Runtime.Address = ctrd.Address
		c.Runtime.HostsDir = ctrd.HostsDir
	})
	ns := h.namespace(t)
	h.createPod(t, ns, h.pod("steady", "n3", "exec sleep 3600"))
	// Exits 5 on SIGTERM (sh as PID 1 has no default action for it).
	exiting := h.pod("exiting", "n3", `trap "exit 5" TERM; while true; do sleep 3600 & wait $!; done`)
	exiting.Spec.RestartPolicy = corev1.RestartPolicyNever
	h.createPod(t, ns, exiting)
	steady := h.waitPod(t, ns, "steady", "running", running).Status.ContainerStatuses[0]
	ex := h.waitPod(t, ns, "exiting", "running", running).Status.ContainerStatuses[0]
	pid := taskPIDOn(t, ctrd, "n3", steady.ContainerID)
	exPID := taskPIDOn(t, ctrd, "n3", ex.ContainerID)

	ctrd.Down(t)
	// The container exits while containerd is down: its shim keeps the
	// exit status for the next containerd.
	if err := syscall.Kill(int(exPID), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctrd.Up(t)

	p := h.waitPod(t, ns, "exiting", "exit during the restart recorded", func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Terminated != nil
	})
	if term := p.Status.ContainerStatuses[0].State.Terminated; term.ExitCode != 5 || p.Status.Phase != corev1.PodFailed {
		t.Errorf("pod that exited while containerd was down: phase %s, terminated %+v; want Failed with exit code 5", p.Status.Phase, term)
	}
	h.createPod(t, ns, h.pod("after", "n3", "echo started after the restart; exec sleep 3600"))
	h.waitPod(t, ns, "after", "running (the agent reconnected)", running)
	p = h.waitPod(t, ns, "steady", "still running", running)
	if cs := p.Status.ContainerStatuses[0]; cs.ContainerID != steady.ContainerID || cs.RestartCount != 0 {
		t.Errorf("container after the containerd restart %+v, before %+v", cs, steady)
	}
	if got := taskPIDOn(t, ctrd, "n3", steady.ContainerID); got != pid {
		t.Errorf("container process %d after the containerd restart, %d before", got, pid)
	}

	// An exit after the restart is recorded too: the agent's exit
	// watchers re-attached to the new containerd.
	if err := syscall.Kill(int(taskPIDOn(t, ctrd, "n3", steady.ContainerID)), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	h.waitPod(t, ns, "steady", "restarted after an exit after the containerd restart", func(p *corev1.Pod) bool {
		cs := p.Status.ContainerStatuses[0]
		lt := cs.LastTerminationState.Terminated
		return cs.RestartCount == 1 && lt != nil && lt.ExitCode == 137
	})
}

func taskPIDOn(t *testing.T, d *containerdtest.Daemon, nodeName, containerID string) uint32 {
	t.Helper()
	c := d.Client(t, nodeName)
	ctx := context.Background()
	ctr, err := c.LoadContainer(ctx, strings.TrimPrefix(containerID, "containerd://"))
	if err != nil {
		t.Fatal(err)
	}
	task, err := ctr.Task(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	return task.Pid()
}
