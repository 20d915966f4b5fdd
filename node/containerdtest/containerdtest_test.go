package containerdtest

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestImageHarnessDaemon(t *testing.T) {
	d := Start(t)
	c := d.Client(t, "harness")
	v, err := c.Version(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.Version == "" {
		t.Fatalf("version %+v", v)
	}
	serving, err := c.IsServing(context.Background())
	if err != nil || !serving {
		t.Fatalf("serving %v %v", serving, err)
	}
	t.Logf("containerd %s (%s) at %s", v.Version, v.Revision, d.Address)
}

// TestDownUp: a daemon stopped with Down refuses clients; after Up the
// same socket answers with the same metadata (a namespace made before).
func TestDownUp(t *testing.T) {
	d := Start(t)
	ctx := context.Background()
	c := d.Client(t, "before")
	if err := c.NamespaceService().Create(ctx, "kept", nil); err != nil {
		t.Fatal(err)
	}
	d.Down(t)
	if _, err := c.Version(ctx); err == nil {
		t.Fatal("a downed daemon answered")
	}
	d.Up(t)
	nss, err := d.Client(t, "after").NamespaceService().List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(nss, "kept") {
		t.Errorf("namespaces after Up: %v, want kept", nss)
	}
	// The first client's connection comes back on its own, once gRPC's
	// reconnect back-off (up to seconds) next dials; until then its calls
	// fail fast with Unavailable, which is what callers must retry.
	deadline := time.Now().Add(60 * time.Second)
	for {
		_, err := c.Version(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client from before Down did not reconnect: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
