package printers

import (
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const (
	containersDescription = "Names of each container in the template."
	imagesDescription     = "Images referenced by each container in the template."
)

func appsPrinters() map[schema.GroupResource]resourcePrinter {
	return map[schema.GroupResource]resourcePrinter{
		{Group: "apps", Resource: "deployments"}: deploymentPrinter(),
		{Group: "apps", Resource: "replicasets"}: replicaSetPrinter(),
	}
}

// replicas reads spec.replicas with its API default, so an object stored
// without the field shows the one replica it will get.
func replicas(r *int32) int64 {
	if r == nil {
		return 1
	}
	return int64(*r)
}

func deploymentPrinter() resourcePrinter {
	status := appsv1.DeploymentStatus{}.SwaggerDoc()
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Ready", "string", "Number of the pod with ready state"),
			column("Up-to-date", "string", status["updatedReplicas"]),
			column("Available", "string", status["availableReplicas"]),
			ageColumn(),
			wideColumn("Containers", "string", containersDescription),
			wideColumn("Images", "string", imagesDescription),
			wideColumn("Selector", "string", appsv1.DeploymentSpec{}.SwaggerDoc()["selector"]),
		},
		rows: rowsOf(deploymentRow, func(l *appsv1.DeploymentList) []appsv1.Deployment { return l.Items }),
	}
}

func deploymentRow(d *appsv1.Deployment, now time.Time) metav1.TableRow {
	names, images := containerCells(d.Spec.Template.Spec.Containers)
	// Unlike the other workloads, Kubernetes prints an empty (not <none>)
	// selector for deployments and flags an unparsable one.
	selector := "<invalid>"
	if s, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err == nil {
		selector = s.String()
	}
	return cells(
		d.Name,
		fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, replicas(d.Spec.Replicas)),
		int64(d.Status.UpdatedReplicas),
		int64(d.Status.AvailableReplicas),
		age(d.CreationTimestamp, now),
		names,
		images,
		selector,
	)
}

func replicaSetPrinter() resourcePrinter {
	spec := appsv1.ReplicaSetSpec{}.SwaggerDoc()
	status := appsv1.ReplicaSetStatus{}.SwaggerDoc()
	return resourcePrinter{
		columns: []metav1.TableColumnDefinition{
			nameColumn(),
			column("Desired", "integer", spec["replicas"]),
			column("Current", "integer", status["replicas"]),
			column("Ready", "integer", status["readyReplicas"]),
			ageColumn(),
			wideColumn("Containers", "string", containersDescription),
			wideColumn("Images", "string", imagesDescription),
			wideColumn("Selector", "string", spec["selector"]),
		},
		rows: rowsOf(func(rs *appsv1.ReplicaSet, now time.Time) metav1.TableRow {
			names, images := containerCells(rs.Spec.Template.Spec.Containers)
			return cells(
				rs.Name,
				replicas(rs.Spec.Replicas),
				int64(rs.Status.Replicas),
				int64(rs.Status.ReadyReplicas),
				age(rs.CreationTimestamp, now),
				names,
				images,
				metav1.FormatLabelSelector(rs.Spec.Selector),
			)
		}, func(l *appsv1.ReplicaSetList) []appsv1.ReplicaSet { return l.Items }),
	}
}
