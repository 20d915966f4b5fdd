package containerdtest

import (
	"context"
	"testing"
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
