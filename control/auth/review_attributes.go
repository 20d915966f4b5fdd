package auth

import (
	"fmt"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// validateSelfSubjectAccessReview is kube-apiserver's validation: the review
// asks exactly one question, and carries no metadata because nothing is
// stored under it.
func validateSelfSubjectAccessReview(r *authorizationv1.SelfSubjectAccessReview) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	switch {
	case r.Spec.ResourceAttributes != nil && r.Spec.NonResourceAttributes != nil:
		errs = append(errs, field.Invalid(spec.Child("nonResourceAttributes"), r.Spec.NonResourceAttributes, "cannot be specified in combination with resourceAttributes"))
	case r.Spec.ResourceAttributes == nil && r.Spec.NonResourceAttributes == nil:
		errs = append(errs, field.Invalid(spec.Child("resourceAttributes"), r.Spec.NonResourceAttributes, "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
	}
	if ra := r.Spec.ResourceAttributes; ra != nil {
		errs = append(errs, validateFieldSelectorAttributes(ra.FieldSelector, spec.Child("resourceAttributes", "fieldSelector"))...)
		errs = append(errs, validateLabelSelectorAttributes(ra.LabelSelector, spec.Child("resourceAttributes", "labelSelector"))...)
	}
	meta := r.ObjectMeta
	meta.ManagedFields = nil // set by the apply machinery, not the client
	if !apiequality.Semantic.DeepEqual(metav1.ObjectMeta{}, meta) {
		errs = append(errs, field.Invalid(field.NewPath("metadata"), r.ObjectMeta, "must be empty"))
	}
	return errs
}

// Unknown operators are allowed in selector requirements so that a newer
// client can still ask; requirements only ever narrow a request, so ignoring
// one can only make the answer more conservative.
func validateFieldSelectorAttributes(s *authorizationv1.FieldSelectorAttributes, path *field.Path) field.ErrorList {
	if s == nil {
		return nil
	}
	errs := validateSelectorShape(s.RawSelector, len(s.Requirements), path)
	opts := metav1validation.FieldSelectorValidationOptions{AllowUnknownOperatorInRequirement: true}
	for i, req := range s.Requirements {
		errs = append(errs, metav1validation.ValidateFieldSelectorRequirement(req, opts, path.Child("requirements").Index(i))...)
	}
	return errs
}

func validateLabelSelectorAttributes(s *authorizationv1.LabelSelectorAttributes, path *field.Path) field.ErrorList {
	if s == nil {
		return nil
	}
	errs := validateSelectorShape(s.RawSelector, len(s.Requirements), path)
	opts := metav1validation.LabelSelectorValidationOptions{AllowUnknownOperatorInRequirement: true}
	for i, req := range s.Requirements {
		errs = append(errs, metav1validation.ValidateLabelSelectorRequirement(req, opts, path.Child("requirements").Index(i))...)
	}
	return errs
}

// validateSelectorShape refuses both forms at once: two parsers disagreeing
// about one selector is how parameter-smuggling bugs happen.
func validateSelectorShape(raw string, requirements int, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if raw != "" && requirements > 0 {
		errs = append(errs, field.Invalid(path.Child("rawSelector"), raw, "may not specified at the same time as requirements"))
	}
	if raw == "" && requirements == 0 {
		errs = append(errs, field.Required(path.Child("requirements"), fmt.Sprintf("when %s is specified, requirements or rawSelector is required", path)))
	}
	return errs
}

// resourceAttributesFrom turns the review's question into the attributes a
// real request would carry. Selector problems are kept as parse errors on the
// record, not failures: authorisers treat an unparsable selector as absent
// (a broader question), and the status reports that it was ignored.
func resourceAttributesFrom(u user.Info, in *authorizationv1.ResourceAttributes) authorizer.AttributesRecord {
	version := in.Version
	if version == "" {
		version = "*"
	}
	rec := authorizer.AttributesRecord{
		User:            u,
		Verb:            in.Verb,
		Namespace:       in.Namespace,
		APIGroup:        in.Group,
		APIVersion:      version,
		Resource:        in.Resource,
		Subresource:     in.Subresource,
		Name:            in.Name,
		ResourceRequest: true,
	}
	if s := in.LabelSelector; s != nil {
		switch {
		case len(s.Requirements) > 0:
			rec.LabelSelectorRequirements, rec.LabelSelectorParsingErr = labelRequirements(s.Requirements)
		case s.RawSelector != "":
			sel, err := labels.Parse(s.RawSelector)
			if err != nil {
				rec.LabelSelectorParsingErr = err
			} else {
				rec.LabelSelectorRequirements, _ = sel.Requirements()
			}
		}
	}
	if s := in.FieldSelector; s != nil {
		switch {
		case len(s.Requirements) > 0:
			rec.FieldSelectorRequirements, rec.FieldSelectorParsingErr = fieldRequirements(s.Requirements)
		case s.RawSelector != "":
			sel, err := fields.ParseSelector(s.RawSelector)
			if err != nil {
				rec.FieldSelectorParsingErr = err
			} else {
				rec.FieldSelectorRequirements = sel.Requirements()
			}
		}
	}
	return rec
}

func nonResourceAttributesFrom(u user.Info, in *authorizationv1.NonResourceAttributes) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{User: u, Verb: in.Verb, Path: in.Path}
}

// labelRequirements keeps the requirements it understands and reports the
// rest; dropping an ANDed requirement only widens the question.
func labelRequirements(in []metav1.LabelSelectorRequirement) (labels.Requirements, error) {
	var (
		out  labels.Requirements
		errs []error
	)
	for _, r := range in {
		var op selection.Operator
		switch r.Operator {
		case metav1.LabelSelectorOpIn:
			op = selection.In
		case metav1.LabelSelectorOpNotIn:
			op = selection.NotIn
		case metav1.LabelSelectorOpExists:
			op = selection.Exists
		case metav1.LabelSelectorOpDoesNotExist:
			op = selection.DoesNotExist
		default:
			errs = append(errs, fmt.Errorf("%q is not a valid label selector operator", r.Operator))
			continue
		}
		values := r.Values
		if len(values) == 0 {
			values = nil
		}
		req, err := labels.NewRequirement(r.Key, op, values)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, *req)
	}
	return out, utilerrors.NewAggregate(errs)
}

// fieldRequirements accepts only single-valued In/NotIn, the forms field
// selectors can express (as = and !=).
func fieldRequirements(in []metav1.FieldSelectorRequirement) (fields.Requirements, error) {
	var (
		out  fields.Requirements
		errs []error
	)
	for _, r := range in {
		var op selection.Operator
		switch r.Operator {
		case metav1.FieldSelectorOpIn:
			op = selection.Equals
		case metav1.FieldSelectorOpNotIn:
			op = selection.NotEquals
		case metav1.FieldSelectorOpExists, metav1.FieldSelectorOpDoesNotExist:
			errs = append(errs, fmt.Errorf("fieldSelectors do not yet support %v", r.Operator))
			continue
		default:
			errs = append(errs, fmt.Errorf("%q is not a valid field selector operator", r.Operator))
			continue
		}
		if len(r.Values) != 1 {
			errs = append(errs, fmt.Errorf("fieldSelectors %v must have exactly one value", r.Operator))
			continue
		}
		out = append(out, fields.Requirement{Field: r.Key, Operator: op, Value: r.Values[0]})
	}
	return out, utilerrors.NewAggregate(errs)
}

// evaluationError reports authoriser errors together with any selector that
// was ignored, so the caller knows the answer is for a broader question.
func evaluationError(err error, attrs authorizer.AttributesRecord) string {
	var msgs []string
	if err != nil {
		msgs = append(msgs, err.Error())
	}
	if reqs, perr := attrs.GetFieldSelector(); perr != nil {
		msgs = append(msgs, ignoredSelector("fieldSelector", len(reqs) > 0))
	}
	if reqs, perr := attrs.GetLabelSelector(); perr != nil {
		msgs = append(msgs, ignoredSelector("labelSelector", len(reqs) > 0))
	}
	return strings.Join(msgs, "; ")
}

func ignoredSelector(name string, partially bool) string {
	if partially {
		return "spec.resourceAttributes." + name + " partially ignored due to parse error"
	}
	return "spec.resourceAttributes." + name + " ignored due to parse error"
}
