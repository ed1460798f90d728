// Package admission applies a CRD's own schema to objects without an
// apiserver: unknown fields, defaults, OpenAPI validation and CEL rules, in
// the apiserver's order and with its messages. `joinery simulate` uses it so
// that a NodePool it accepts is one the apiserver would accept, defaulted
// the same way.
package admission

import (
	"context"
	"fmt"
	"io/fs"
	"math"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/config/crd"
)

// Validator admits objects of one CRD version.
type Validator struct {
	GroupVersionKind schema.GroupVersionKind
	structural       *structuralschema.Structural
	schemaValidator  apiservervalidation.SchemaValidator
	celValidator     *cel.Validator
}

// ForEmbeddedCRD builds a Validator from the generated CRD file (a name in
// config/crd/bases) for the given version.
func ForEmbeddedCRD(file, version string) (*Validator, error) {
	data, err := fs.ReadFile(crd.Bases, "bases/"+file)
	if err != nil {
		return nil, err
	}
	return ForCRD(file, data, version)
}

// ForCRD builds a Validator from a CRD's YAML (named file in errors), e.g.
// an older revision's, to tell what it would have admitted.
func ForCRD(file string, data []byte, version string) (*Validator, error) {
	var def apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(data, &def); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for _, v := range def.Spec.Versions {
		if v.Name != version {
			continue
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(v.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			return nil, err
		}
		structural, err := structuralschema.NewStructural(&internal)
		if err != nil {
			return nil, fmt.Errorf("%s: schema is not structural: %w", file, err)
		}
		schemaValidator, _, err := apiservervalidation.NewSchemaValidator(&internal)
		if err != nil {
			return nil, err
		}
		return &Validator{
			GroupVersionKind: schema.GroupVersionKind{Group: def.Spec.Group, Version: version, Kind: def.Spec.Names.Kind},
			structural:       structural,
			schemaValidator:  schemaValidator,
			celValidator:     cel.NewValidator(structural, true, celconfig.PerCallLimit),
		}, nil
	}
	return nil, fmt.Errorf("%s has no version %q", file, version)
}

// Admit rejects unknown fields, applies the schema's defaults to obj in
// place, and validates the result. obj is the object as decoded from JSON
// or YAML (map[string]any with float64/int64 numbers).
func (v *Validator) Admit(ctx context.Context, obj map[string]any) field.ErrorList {
	integralNumbersToInt64(obj)
	var errs field.ErrorList
	unknown := pruning.PruneWithOptions(obj, v.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, path := range unknown {
		errs = append(errs, field.Invalid(field.NewPath(path), "", "unknown field; check its spelling against the NodePool reference (docs/nodepool.md)"))
	}
	structuraldefaulting.Default(obj, v.structural)
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, obj, v.schemaValidator)...)
	if len(errs) > 0 {
		// The apiserver runs CEL only on objects that pass the schema.
		return errs
	}
	celErrs, _ := v.celValidator.Validate(ctx, nil, v.structural, obj, nil, celconfig.RuntimeCELCostBudget)
	return append(errs, celErrs...)
}

// integralNumbersToInt64 turns whole float64 numbers into int64 in place,
// as the apiserver's JSON decoding does: CEL rules compare integer fields
// as int and fail on float64.
func integralNumbersToInt64(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = integralNumbersToInt64(e)
		}
	case []any:
		for i, e := range x {
			x[i] = integralNumbersToInt64(e)
		}
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
	case int:
		return int64(x)
	}
	return v
}
