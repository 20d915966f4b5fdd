package vxlan

import "testing"

func TestTxChecksumWanted(t *testing.T) {
	tests := []struct {
		o       Offload
		release string
		want    bool
		wantErr bool
	}{
		{OffloadAuto, "5.4.0-150-generic", false, false},
		{OffloadAuto, "5.6.19", false, false},
		{OffloadAuto, "5.7.0", true, false},
		{OffloadAuto, "6.18.44-fc-v1098", true, false},
		{OffloadAuto, "4.19.0", false, false},
		{OffloadAuto, "garbage", false, false},
		{OffloadOn, "4.19.0", true, false},
		{OffloadOff, "6.18.0", false, false},
		{"sideways", "6.18.0", false, true},
	}
	for _, tt := range tests {
		got, err := txChecksumWanted(tt.o, tt.release)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("txChecksumWanted(%q, %q) = %v, %v; want %v (error %v)", tt.o, tt.release, got, err, tt.want, tt.wantErr)
		}
	}
}
