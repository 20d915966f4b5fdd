package printers

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
)

const (
	// Node roles come from either label form; kubeadm writes the first.
	nodeRoleLabelPrefix = "node-role.kubernetes.io/"
	nodeRoleLabel       = "kubernetes.io/role"
)

func corePrinters() map[schema.GroupResource]resourcePrinter {
	core := func(resource string) schema.GroupResource { return schema.GroupResource{Resource: resource} }
	return map[schema.GroupResource]resourcePrinter{
		core("namespaces"):      namespacePrinter(),
		core("pods"):            podPrinter(),
		core("nodes"):           nodePrinter(),
		core("services"):        servicePrinter(),
		core("endpoints"):       endpointsPrinter(),
		core("configmaps"):      configMapPrinter(),
		core("secrets"):         secretPrinter(),
		core("events"):          eventPrinter(),
		core("serviceaccounts"): serviceAccountPrinter(),
	}
}

func namespacePrinter() resourcePrinter {
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", "string", "The status of the namespace"),
			ageColumn(),
		},
		rows: rowsOf(func(ns *corev1.Namespace, now time.Time) metav1.TableRow {
			return cells(ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp, now))
		}, func(l *corev1.NamespaceList) []corev1.Namespace { return l.Items }),
	}
}

func nodePrinter() resourcePrinter {
	info := corev1.NodeSystemInfo{}.SwaggerDoc()
	addresses := corev1.NodeStatus{}.SwaggerDoc()["addresses"]
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Status", "string", "The status of the node"),
			column("Roles", "string", "The roles of the node"),
			ageColumn(),
			column("Version", "string", info["kubeletVersion"]),
			wideColumn("Internal-IP", "string", addresses),
			wideColumn("External-IP", "string", addresses),
			wideColumn("OS-Image", "string", info["osImage"]),
			wideColumn("Kernel-Version", "string", info["kernelVersion"]),
			wideColumn("Container-Runtime", "string", info["containerRuntimeVersion"]),
		},
		rows: rowsOf(nodeRow, func(l *corev1.NodeList) []corev1.Node { return l.Items }),
	}
}

func nodeRow(node *corev1.Node, now time.Time) metav1.TableRow {
	ni := node.Status.NodeInfo
	return cells(
		node.Name,
		nodeStatus(node),
		orNone(strings.Join(nodeRoles(node), ",")),
		age(node.CreationTimestamp, now),
		ni.KubeletVersion,
		nodeAddress(node, corev1.NodeInternalIP),
		nodeAddress(node, corev1.NodeExternalIP),
		orUnknown(ni.OSImage),
		orUnknown(ni.KernelVersion),
		orUnknown(ni.ContainerRuntimeVersion),
	)
}

// nodeStatus shows only the Ready condition: the pressure conditions would
// crowd the column and are what `kubectl describe` is for.
func nodeStatus(node *corev1.Node) string {
	var status []string
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			status = []string{string(c.Type)}
		} else {
			status = []string{"Not" + string(c.Type)}
		}
	}
	if len(status) == 0 {
		status = []string{"Unknown"}
	}
	if node.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}
	return strings.Join(status, ",")
}

func nodeRoles(node *corev1.Node) []string {
	roles := sets.New[string]()
	for k, v := range node.Labels {
		switch {
		case strings.HasPrefix(k, nodeRoleLabelPrefix):
			if role := strings.TrimPrefix(k, nodeRoleLabelPrefix); role != "" {
				roles.Insert(role)
			}
		case k == nodeRoleLabel && v != "":
			roles.Insert(v)
		}
	}
	return sets.List(roles)
}

func nodeAddress(node *corev1.Node, t corev1.NodeAddressType) string {
	for _, a := range node.Status.Addresses {
		if a.Type == t {
			return a.Address
		}
	}
	return none
}

func servicePrinter() resourcePrinter {
	spec := corev1.ServiceSpec{}.SwaggerDoc()
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Type", "string", spec["type"]),
			column("Cluster-IP", "string", spec["clusterIP"]),
			column("External-IP", "string", spec["externalIPs"]),
			column("Port(s)", "string", spec["ports"]),
			ageColumn(),
			wideColumn("Selector", "string", spec["selector"]),
		},
		rows: rowsOf(serviceRow, func(l *corev1.ServiceList) []corev1.Service { return l.Items }),
	}
}

func serviceRow(svc *corev1.Service, now time.Time) metav1.TableRow {
	clusterIP := svc.Spec.ClusterIP
	if len(svc.Spec.ClusterIPs) > 0 {
		clusterIP = svc.Spec.ClusterIPs[0]
	}
	return cells(
		svc.Name,
		string(serviceType(svc)),
		orNone(clusterIP),
		serviceExternalIP(svc),
		orNone(servicePorts(svc.Spec.Ports)),
		age(svc.CreationTimestamp, now),
		labels.FormatLabels(svc.Spec.Selector),
	)
}

// serviceType fills in the API default, so a service stored without a type
// reads as what it behaves like.
func serviceType(svc *corev1.Service) corev1.ServiceType {
	if svc.Spec.Type == "" {
		return corev1.ServiceTypeClusterIP
	}
	return svc.Spec.Type
}

func serviceExternalIP(svc *corev1.Service) string {
	switch serviceType(svc) {
	case corev1.ServiceTypeClusterIP, corev1.ServiceTypeNodePort:
		return orNone(strings.Join(svc.Spec.ExternalIPs, ","))
	case corev1.ServiceTypeLoadBalancer:
		ips := loadBalancerIngress(svc.Status.LoadBalancer)
		ips = append(ips, svc.Spec.ExternalIPs...)
		if len(ips) == 0 {
			// The cloud has not assigned an address yet.
			return "<pending>"
		}
		return strings.Join(ips, ",")
	case corev1.ServiceTypeExternalName:
		return svc.Spec.ExternalName
	}
	return unknown
}

// loadBalancerIngress lists each ingress point once, sorted. It is never
// clipped: the server always prints wide, where Kubernetes does not clip.
func loadBalancerIngress(s corev1.LoadBalancerStatus) []string {
	seen := sets.New[string]()
	for _, in := range s.Ingress {
		switch {
		case in.IP != "":
			seen.Insert(in.IP)
		case in.Hostname != "":
			seen.Insert(in.Hostname)
		}
	}
	return sets.List(seen)
}

func servicePorts(ports []corev1.ServicePort) string {
	pieces := make([]string, len(ports))
	for i, p := range ports {
		protocol := p.Protocol
		if protocol == "" {
			protocol = corev1.ProtocolTCP // the API default
		}
		if p.NodePort > 0 {
			pieces[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, protocol)
		} else {
			pieces[i] = fmt.Sprintf("%d/%s", p.Port, protocol)
		}
	}
	return strings.Join(pieces, ",")
}

func endpointsPrinter() resourcePrinter {
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Endpoints", "string", corev1.Endpoints{}.SwaggerDoc()["subsets"]),
			ageColumn(),
		},
		rows: rowsOf(func(ep *corev1.Endpoints, now time.Time) metav1.TableRow {
			return cells(ep.Name, formatEndpoints(ep), age(ep.CreationTimestamp, now))
		}, func(l *corev1.EndpointsList) []corev1.Endpoints { return l.Items }),
	}
}

// formatEndpoints lists ip:port for every port of every subset; headless
// services without ports list bare IPs.
func formatEndpoints(ep *corev1.Endpoints) string {
	if len(ep.Subsets) == 0 {
		return none
	}
	var shown []string
	total := 0
	for _, ss := range ep.Subsets {
		if len(ss.Ports) == 0 {
			for _, a := range ss.Addresses {
				shown = appendCapped(shown, a.IP)
				total++
			}
			continue
		}
		for _, p := range ss.Ports {
			for _, a := range ss.Addresses {
				shown = appendCapped(shown, net.JoinHostPort(a.IP, strconv.Itoa(int(p.Port))))
				total++
			}
		}
	}
	return withMore(shown, total)
}

func configMapPrinter() resourcePrinter {
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Data", "string", corev1.ConfigMap{}.SwaggerDoc()["data"]),
			ageColumn(),
		},
		rows: rowsOf(func(cm *corev1.ConfigMap, now time.Time) metav1.TableRow {
			return cells(cm.Name, int64(len(cm.Data)+len(cm.BinaryData)), age(cm.CreationTimestamp, now))
		}, func(l *corev1.ConfigMapList) []corev1.ConfigMap { return l.Items }),
	}
}

func secretPrinter() resourcePrinter {
	doc := corev1.Secret{}.SwaggerDoc()
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Type", "string", doc["type"]),
			column("Data", "string", doc["data"]),
			ageColumn(),
		},
		rows: rowsOf(func(s *corev1.Secret, now time.Time) metav1.TableRow {
			return cells(s.Name, string(s.Type), int64(len(s.Data)), age(s.CreationTimestamp, now))
		}, func(l *corev1.SecretList) []corev1.Secret { return l.Items }),
	}
}

func serviceAccountPrinter() resourcePrinter {
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Secrets", "string", corev1.ServiceAccount{}.SwaggerDoc()["secrets"]),
			ageColumn(),
		},
		rows: rowsOf(func(sa *corev1.ServiceAccount, now time.Time) metav1.TableRow {
			return cells(sa.Name, int64(len(sa.Secrets)), age(sa.CreationTimestamp, now))
		}, func(l *corev1.ServiceAccountList) []corev1.ServiceAccount { return l.Items }),
	}
}

func eventPrinter() resourcePrinter {
	doc := corev1.Event{}.SwaggerDoc()
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			column("Last Seen", "string", doc["lastTimestamp"]),
			column("Type", "string", doc["type"]),
			column("Reason", "string", doc["reason"]),
			column("Object", "string", doc["involvedObject"]),
			wideColumn("Subobject", "string", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]),
			wideColumn("Source", "string", doc["source"]),
			column("Message", "string", doc["message"]),
			wideColumn("First Seen", "string", doc["firstTimestamp"]),
			wideColumn("Count", "string", doc["count"]),
			func() metav1.TableColumnDefinition {
				c := nameColumn()
				c.Priority = 1
				return c
			}(),
		},
		rows: rowsOf(eventRow, func(l *corev1.EventList) []corev1.Event { return l.Items }),
	}
}

// eventRow reconciles the two generations of event fields: events.k8s.io
// writers set eventTime/series, core writers set the timestamps and count.
func eventRow(ev *corev1.Event, now time.Time) metav1.TableRow {
	firstSeen := age(ev.FirstTimestamp, now)
	if ev.FirstTimestamp.IsZero() {
		firstSeen = microAge(ev.EventTime, now)
	}
	lastSeen := age(ev.LastTimestamp, now)
	if ev.LastTimestamp.IsZero() {
		lastSeen = firstSeen
	}
	count := ev.Count
	if ev.Series != nil {
		lastSeen = microAge(ev.Series.LastObservedTime, now)
		count = ev.Series.Count
	} else if count == 0 {
		// Singleton events carry no count in the new API.
		count = 1
	}
	target := strings.ToLower(ev.InvolvedObject.Kind)
	if ev.InvolvedObject.Name != "" {
		target += "/" + ev.InvolvedObject.Name
	}
	return cells(
		lastSeen,
		ev.Type,
		ev.Reason,
		target,
		ev.InvolvedObject.FieldPath,
		eventSource(ev),
		strings.TrimSpace(ev.Message),
		firstSeen,
		int64(count),
		ev.Name,
	)
}

// eventSource prefers the legacy source and falls back to the reporting
// fields newer writers fill instead.
func eventSource(ev *corev1.Event) string {
	component := firstNonEmpty(ev.Source.Component, ev.ReportingController)
	host := firstNonEmpty(ev.Source.Host, ev.ReportingInstance)
	if host == "" {
		return component
	}
	return component + ", " + host
}

func firstNonEmpty(ss ...string) string {
	i := slices.IndexFunc(ss, func(s string) bool { return s != "" })
	if i < 0 {
		return ""
	}
	return ss[i]
}
