package solver

import (
	"sort"
	"strconv"
	"strings"

	v1alpha1 "github.com/joinery-dev/joinery/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
)

// Operator is a requirement operator. In, NotIn, Exists, DoesNotExist, Gt and
// Lt mean what they mean in a NodeSelectorRequirement; Gte and Lte are
// Karpenter's inclusive variants.
type Operator string

const (
	OpIn           Operator = "In"
	OpNotIn        Operator = "NotIn"
	OpExists       Operator = "Exists"
	OpDoesNotExist Operator = "DoesNotExist"
	OpGt           Operator = "Gt"
	OpLt           Operator = "Lt"
	OpGte          Operator = "Gte"
	OpLte          Operator = "Lte"
)

// Requirement constrains one label key.
type Requirement struct {
	Key      string
	Operator Operator
	Values   []string
	// MinValues (pool requirements only) asks that a new node keep at least
	// this many distinct values of Key among its chosen and fallback types,
	// so the cloud has room to fall back.
	MinValues *int
}

// Requirements are ANDed.
type Requirements []Requirement

// LabelGetter resolves a node label. Planned nodes resolve labels from their
// pool, instance type and offering without building a map.
type LabelGetter interface {
	Label(key string) (string, bool)
}

// LabelMap adapts a plain label map.
type LabelMap map[string]string

// Label implements LabelGetter.
func (m LabelMap) Label(key string) (string, bool) {
	v, ok := m[key]
	return v, ok
}

// Matches reports whether a label (value, present) satisfies the requirement.
func (r *Requirement) Matches(value string, present bool) bool {
	switch r.Operator {
	case OpIn:
		return present && containsString(r.Values, value)
	case OpNotIn:
		return !present || !containsString(r.Values, value)
	case OpExists:
		return present
	case OpDoesNotExist:
		return !present
	case OpGt, OpLt, OpGte, OpLte:
		if !present || len(r.Values) != 1 {
			return false
		}
		v, err := strconv.ParseInt(value, 10, 64)
		if err != nil {
			return false
		}
		bound, err := strconv.ParseInt(r.Values[0], 10, 64)
		if err != nil {
			return false
		}
		switch r.Operator {
		case OpGt:
			return v > bound
		case OpLt:
			return v < bound
		case OpGte:
			return v >= bound
		default:
			return v <= bound
		}
	}
	return false
}

// Matches reports whether every requirement holds for the labels.
func (rs Requirements) Matches(labels LabelGetter) bool {
	for i := range rs {
		v, ok := labels.Label(rs[i].Key)
		if !rs[i].Matches(v, ok) {
			return false
		}
	}
	return true
}

// FirstMismatch returns the first requirement the labels violate.
func (rs Requirements) FirstMismatch(labels LabelGetter) (Requirement, bool) {
	for i := range rs {
		v, ok := labels.Label(rs[i].Key)
		if !rs[i].Matches(v, ok) {
			return rs[i], true
		}
	}
	return Requirement{}, false
}

// Keys returns the distinct keys, sorted.
func (rs Requirements) Keys() []string {
	var keys []string
	for i := range rs {
		if !containsString(keys, rs[i].Key) {
			keys = append(keys, rs[i].Key)
		}
	}
	sort.Strings(keys)
	return keys
}

// String renders the requirements compactly, e.g. [kubernetes.io/arch In arm64].
func (rs Requirements) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i := range rs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(rs[i].String())
	}
	b.WriteByte(']')
	return b.String()
}

func (r Requirement) String() string {
	switch r.Operator {
	case OpExists, OpDoesNotExist:
		return r.Key + " " + string(r.Operator)
	case OpIn:
		if len(r.Values) == 1 {
			return r.Key + "=" + r.Values[0]
		}
	}
	return r.Key + " " + string(r.Operator) + " " + strings.Join(r.Values, ",")
}

// RequirementsFromNodeSelector converts NodeSelectorRequirements (pool specs,
// pod affinity terms). MatchFields are not labels and are not converted.
func RequirementsFromNodeSelector(in []corev1.NodeSelectorRequirement) Requirements {
	out := make(Requirements, 0, len(in))
	for _, r := range in {
		out = append(out, Requirement{Key: normalizeKey(r.Key), Operator: Operator(r.Operator), Values: r.Values})
	}
	return out
}

// normalizeKey reads a deprecated or provider alias as the well-known key
// it means (beta.kubernetes.io/arch is kubernetes.io/arch), as Karpenter does.
func normalizeKey(key string) string {
	if k, ok := v1alpha1.NormalizedLabels[key]; ok {
		return k
	}
	return key
}

// RequirementsFromLabels turns a label map (a nodeSelector) into In
// requirements, sorted by key so the result is deterministic.
func RequirementsFromLabels(labels map[string]string) Requirements {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(Requirements, 0, len(keys))
	for _, k := range keys {
		out = append(out, Requirement{Key: normalizeKey(k), Operator: OpIn, Values: []string{labels[k]}})
	}
	return out
}

// minValuesKeys returns the requirements that carry MinValues.
func (rs Requirements) minValuesKeys() []Requirement {
	var out []Requirement
	for _, r := range rs {
		if r.MinValues != nil && *r.MinValues > 1 {
			out = append(out, r)
		}
	}
	return out
}

// singleValueLabels returns the labels a pool's requirements pin to one value
// (Key In [v]); a planned node carries them, as Karpenter labels its nodes.
func (rs Requirements) singleValueLabels() map[string]string {
	out := map[string]string{}
	for _, r := range rs {
		if r.Operator == OpIn && len(r.Values) == 1 {
			out[r.Key] = r.Values[0]
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
