package validation

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	netutils "k8s.io/utils/net"
)

// legacyIP validates IP fields that predate strict IP parsing. Kubernetes 1.33
// ships StrictIPCIDRValidation disabled, so leading zeros and IPv4-mapped IPv6
// forms are still accepted in these fields.
func legacyIP(path *field.Path, value string) field.ErrorList {
	return validation.IsValidIPForLegacyField(path, value, false, nil)
}

func legacyCIDR(path *field.Path, value string) field.ErrorList {
	return validation.IsValidCIDRForLegacyField(path, value, false, nil)
}

// endpointIP is ValidateEndpointIP: an endpoint must be an address traffic can
// actually be sent to, so unspecified, loopback and link-local ranges are
// refused (link-local is typically the node's metadata service).
func endpointIP(value string, path *field.Path) field.ErrorList {
	ip := netutils.ParseIPSloppy(value)
	if ip == nil {
		return field.ErrorList{field.Invalid(path, value, "must be a valid IP address")}
	}
	var errs field.ErrorList
	if ip.IsUnspecified() {
		errs = append(errs, field.Invalid(path, value, fmt.Sprintf("may not be unspecified (%v)", value)))
	}
	if ip.IsLoopback() {
		errs = append(errs, field.Invalid(path, value, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
	}
	if ip.IsLinkLocalUnicast() {
		errs = append(errs, field.Invalid(path, value, "may not be in the link-local range (169.254.0.0/16, fe80::/10)"))
	}
	if ip.IsLinkLocalMulticast() {
		errs = append(errs, field.Invalid(path, value, "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"))
	}
	return errs
}

func ipv4Address(path *field.Path, value string) field.ErrorList {
	ip := netutils.ParseIPSloppy(value)
	if ip == nil || ip.To4() == nil {
		return field.ErrorList{field.Invalid(path, value, "must be a valid IPv4 address")}
	}
	return nil
}

func ipv6Address(path *field.Path, value string) field.ErrorList {
	ip := netutils.ParseIPSloppy(value)
	if ip == nil || ip.To4() != nil {
		return field.ErrorList{field.Invalid(path, value, "must be a valid IPv6 address")}
	}
	return nil
}
