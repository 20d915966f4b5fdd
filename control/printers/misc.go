package printers

import (
	"strconv"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// miscPrinters covers the small groups that need one resource each.
func miscPrinters() map[schema.GroupResource]resourcePrinter {
	return map[schema.GroupResource]resourcePrinter{
		{Group: coordinationv1.GroupName, Resource: "leases"}:      leasePrinter(),
		{Group: discoveryv1.GroupName, Resource: "endpointslices"}: endpointSlicePrinter(),
	}
}

func leasePrinter() resourcePrinter {
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Holder", "string", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]),
			ageColumn(),
		},
		rows: rowsOf(func(l *coordinationv1.Lease, now time.Time) metav1.TableRow {
			holder := ""
			if l.Spec.HolderIdentity != nil {
				holder = *l.Spec.HolderIdentity
			}
			return cells(l.Name, holder, age(l.CreationTimestamp, now))
		}, func(l *coordinationv1.LeaseList) []coordinationv1.Lease { return l.Items }),
	}
}

func endpointSlicePrinter() resourcePrinter {
	doc := discoveryv1.EndpointSlice{}.SwaggerDoc()
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("AddressType", "string", doc["addressType"]),
			column("Ports", "string", doc["ports"]),
			column("Endpoints", "string", doc["endpoints"]),
			ageColumn(),
		},
		rows: rowsOf(func(s *discoveryv1.EndpointSlice, now time.Time) metav1.TableRow {
			return cells(s.Name, string(s.AddressType), slicePorts(s.Ports), sliceEndpoints(s.Endpoints), age(s.CreationTimestamp, now))
		}, func(l *discoveryv1.EndpointSliceList) []discoveryv1.EndpointSlice { return l.Items }),
	}
}

// slicePorts shows a port by number, else by name; "*" is a slice that
// carries every port of its endpoints.
func slicePorts(ports []discoveryv1.EndpointPort) string {
	var shown []string
	for _, p := range ports {
		s := "*"
		switch {
		case p.Port != nil:
			s = strconv.Itoa(int(*p.Port))
		case p.Name != nil:
			s = *p.Name
		}
		shown = appendCapped(shown, s)
	}
	return orUnsetList(shown, len(ports))
}

func sliceEndpoints(endpoints []discoveryv1.Endpoint) string {
	var shown []string
	total := 0
	for _, e := range endpoints {
		for _, a := range e.Addresses {
			shown = appendCapped(shown, a)
			total++
		}
	}
	return orUnsetList(shown, total)
}

// orUnsetList differs from the Endpoints column, which prints an empty
// cell: for slices Kubernetes says <unset>.
func orUnsetList(shown []string, total int) string {
	if total == 0 {
		return unset
	}
	return withMore(shown, total)
}
