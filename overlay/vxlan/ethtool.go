package vxlan

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The legacy ethtool commands for tx checksumming; the kernel maps them
// onto every checksum feature (NETIF_F_CSUM_MASK), which for a VXLAN
// device is tx-checksum-ip-generic.
const (
	ethtoolGTXCSUM = 0x16
	ethtoolSTXCSUM = 0x17
)

type ethtoolValue struct {
	cmd  uint32
	data uint32
}

type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [16]byte // the rest of struct ifreq's union
}

func ethtoolValueIoctl(dev string, cmd, data uint32) (uint32, error) {
	if len(dev) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("ethtool: interface name %q too long", dev)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("ethtool: socket: %w", err)
	}
	defer unix.Close(fd)
	v := &ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:], dev)
	ifr.data = unsafe.Pointer(v)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	runtime.KeepAlive(v)
	if errno != 0 {
		return 0, errno
	}
	return v.data, nil
}

// TxChecksum reports whether dev offloads tx checksums.
func TxChecksum(dev string) (bool, error) {
	v, err := ethtoolValueIoctl(dev, ethtoolGTXCSUM, 0)
	if err != nil {
		return false, fmt.Errorf("ethtool: %s: get tx checksumming: %w", dev, err)
	}
	return v != 0, nil
}

// SetTxChecksum turns tx checksum offload of dev on or off, as `ethtool
// -K dev tx on|off` does.
func SetTxChecksum(dev string, on bool) error {
	var d uint32
	if on {
		d = 1
	}
	if _, err := ethtoolValueIoctl(dev, ethtoolSTXCSUM, d); err != nil {
		return fmt.Errorf("ethtool: %s: set tx checksumming %v: %w", dev, on, err)
	}
	return nil
}
