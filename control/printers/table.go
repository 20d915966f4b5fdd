package printers

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/rest"
)

// rowsFunc prints a single object or a whole list of one resource. now is
// passed in rather than read from the clock so every cell of one table ages
// against the same instant and tests can pin it.
type rowsFunc func(obj runtime.Object, now time.Time) ([]metav1.TableRow, error)

// resourcePrinter is everything the convertor needs to know about one
// resource.
type resourcePrinter struct {
	columns []metav1.TableColumnDefinition
	rows    rowsFunc
}

// printersByResource is built once during package initialisation and only
// read afterwards, so concurrent requests can share it without locking.
var printersByResource = collect(corePrinters(), appsPrinters(), rbacPrinters(), miscPrinters())

func collect(sets ...map[schema.GroupResource]resourcePrinter) map[schema.GroupResource]resourcePrinter {
	all := map[schema.GroupResource]resourcePrinter{}
	for _, s := range sets {
		maps.Copy(all, s)
	}
	return all
}

// TableConvertor returns the rest.TableConvertor for a resource, e.g.
// schema.GroupResource{Group: "apps", Resource: "deployments"}. Resources
// without dedicated columns get rest.NewDefaultTableConvertor, which prints
// NAME and CREATED AT, as Kubernetes does for roles and clusterroles.
func TableConvertor(gr schema.GroupResource) rest.TableConvertor {
	return newConvertor(gr, time.Now)
}

func newConvertor(gr schema.GroupResource, now func() time.Time) rest.TableConvertor {
	p, ok := printersByResource[gr]
	if !ok {
		return rest.NewDefaultTableConvertor(gr)
	}
	return &convertor{resource: gr, printer: p, now: now}
}

type convertor struct {
	resource schema.GroupResource
	printer  resourcePrinter
	now      func() time.Time
}

// ConvertToTable implements rest.TableConvertor. Like the Kubernetes API
// server it always prints the wide cells; the client decides what to show.
func (c *convertor) ConvertToTable(_ context.Context, obj runtime.Object, tableOptions runtime.Object) (*metav1.Table, error) {
	headers, err := wantHeaders(tableOptions)
	if err != nil {
		return nil, fmt.Errorf("table for %s: %w", c.resource, err)
	}
	rows, err := c.printer.rows(obj, c.now())
	if err != nil {
		return nil, fmt.Errorf("table for %s: %w", c.resource, err)
	}
	// A row whose cells do not line up with the columns would make kubectl
	// print values under the wrong headers; refuse rather than mislead.
	for i := range rows {
		if got, want := len(rows[i].Cells), len(c.printer.columns); got != want {
			return nil, fmt.Errorf("table for %s: row %d has %d cells for %d columns", c.resource, i, got, want)
		}
	}
	table := &metav1.Table{Rows: rows}
	if headers {
		// A copy, so a caller editing its table cannot alter the next one.
		table.ColumnDefinitions = slices.Clone(c.printer.columns)
	}
	if l, err := meta.ListAccessor(obj); err == nil {
		table.ResourceVersion = l.GetResourceVersion()
		table.Continue = l.GetContinue()
		table.RemainingItemCount = l.GetRemainingItemCount()
	} else if o, err := meta.CommonAccessor(obj); err == nil {
		table.ResourceVersion = o.GetResourceVersion()
	}
	return table, nil
}

// wantHeaders mirrors the Kubernetes printer storage: nil options mean
// defaults, anything but *metav1.TableOptions is a caller bug.
func wantHeaders(tableOptions runtime.Object) (bool, error) {
	switch o := tableOptions.(type) {
	case nil:
		return true, nil
	case *metav1.TableOptions:
		return o == nil || !o.NoHeaders, nil
	default:
		return false, fmt.Errorf("unrecognized type %T for table options", tableOptions)
	}
}

// rowsOf adapts a printer for one item type to both that type and its list,
// so every resource accepts *X and *XList without repeating the loop. PT is
// pinned to *T so list items are printed (and referenced) in place.
func rowsOf[T any, PT interface {
	*T
	runtime.Object
}, L any](row func(PT, time.Time) metav1.TableRow, items func(*L) []T) rowsFunc {
	return func(obj runtime.Object, now time.Time) ([]metav1.TableRow, error) {
		switch o := any(obj).(type) {
		case PT:
			if o == nil {
				return nil, fmt.Errorf("cannot print a nil %T", obj)
			}
			return []metav1.TableRow{withObject(row(o, now), o)}, nil
		case *L:
			if o == nil {
				return nil, fmt.Errorf("cannot print a nil %T", obj)
			}
			list := items(o)
			rows := make([]metav1.TableRow, 0, len(list))
			for i := range list {
				item := PT(&list[i])
				rows = append(rows, withObject(row(item, now), item))
			}
			return rows, nil
		default:
			return nil, fmt.Errorf("cannot print %T: expected %T or %T", obj, PT(nil), (*L)(nil))
		}
	}
}

func withObject(row metav1.TableRow, obj runtime.Object) metav1.TableRow {
	row.Object = runtime.RawExtension{Object: obj}
	return row
}

// cells is shorthand for the common row that carries no conditions.
func cells(values ...any) metav1.TableRow {
	return metav1.TableRow{Cells: values}
}

func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

// wideColumn is shown by kubectl only with `-o wide`.
func wideColumn(name, typ, description string) metav1.TableColumnDefinition {
	c := column(name, typ, description)
	c.Priority = 1
	return c
}

// nameColumn carries Format "name" because kubectl uses it to find the
// column it prefixes with kind/ and to drive --show-kind.
func nameColumn() metav1.TableColumnDefinition {
	c := column("Name", "string", metav1.ObjectMeta{}.SwaggerDoc()["name"])
	c.Format = "name"
	return c
}

func ageColumn() metav1.TableColumnDefinition {
	return column("Age", "string", metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"])
}
