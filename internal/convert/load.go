package convert

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/joinery-dev/joinery/internal/scenario"
)

// Input is the Karpenter objects read from the files, in file order, and
// the warnings about documents that were skipped.
type Input struct {
	NodePools      []*NodePoolSource
	EC2NodeClasses []*EC2NodeClassSource
	NodeOverlays   []*NodeOverlaySource
	Warnings       []Warning
}

// NodeOverlaySource is a Karpenter v1alpha1 NodeOverlay and where it was
// read.
type NodeOverlaySource struct {
	Source
	overlay *karpenterNodeOverlay
}

// Name is the NodeOverlay's name.
func (o *NodeOverlaySource) Name() string { return o.overlay.Metadata.Name }

// Source says where an object was read.
type Source struct {
	File     string
	Document int // 1-based position in the file
}

func (s Source) String() string { return fmt.Sprintf("%s document %d", s.File, s.Document) }

// NodePoolSource is a Karpenter v1 NodePool and where it was read.
type NodePoolSource struct {
	Source
	pool *karpenterNodePool
}

// Name is the NodePool's name.
func (n *NodePoolSource) Name() string { return n.pool.Metadata.Name }

// EC2NodeClassSource is a Karpenter v1 EC2NodeClass and where it was read.
type EC2NodeClassSource struct {
	Source
	class *karpenterEC2NodeClass
}

// Name is the EC2NodeClass's name.
func (c *EC2NodeClassSource) Name() string { return c.class.Metadata.Name }

// InputError is a problem with the input; it says where. It is the
// scenario package's, since the files are read by its reader.
type InputError = scenario.InputError

// LoadFiles reads every file ("-" is stdin, named <stdin> in errors) and
// returns all the problems found, not only the first.
func LoadFiles(stdin io.Reader, paths ...string) (*Input, error) {
	l := &loader{input: &Input{}, seen: map[string]string{}}
	var errs []error
	for _, path := range paths {
		var data []byte
		var err error
		if path == "-" {
			if stdin == nil {
				stdin = os.Stdin
			}
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(path)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name := path
		if path == "-" {
			name = "<stdin>"
		}
		errs = append(errs, l.read(name, data)...)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return l.input, nil
}

// Load reads one file's content; file names it in errors.
func Load(file string, data []byte) (*Input, error) {
	l := &loader{input: &Input{}, seen: map[string]string{}}
	if err := errors.Join(l.read(file, data)...); err != nil {
		return nil, err
	}
	return l.input, nil
}

type loader struct {
	input *Input
	seen  map[string]string // kind/name -> where first defined
}

func (l *loader) read(file string, data []byte) []error {
	return scenario.ReadDocuments(file, data, func(doc int, raw []byte) error {
		return l.readObject(Source{File: file, Document: doc}, raw, "")
	})
}

// readObject decodes one object; item is "items[i]: " inside a List.
func (l *loader) readObject(src Source, raw []byte, item string) error {
	fail := func(object string, err error) error {
		if item != "" {
			err = fmt.Errorf("%s: %w", item, err)
		}
		return &InputError{File: src.File, Document: src.Document, Object: object, Err: err}
	}
	head, err := scenario.ReadHead(raw)
	if err != nil {
		return fail("", err)
	}
	object := strings.TrimSpace(head.Kind + " " + head.Metadata.Name)
	if head.Kind == "List" || strings.HasSuffix(head.Kind, "List") && head.Items != nil {
		var errs []error
		for i, it := range head.Items {
			if err := l.readObject(src, it, fmt.Sprintf("%sitems[%d]", prefix(item), i)); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	group, version, _ := strings.Cut(head.APIVersion, "/")
	if version == "" {
		group, version = "", group
	}
	karpenter := group == karpenterGroup || group == karpenterAWSGroup
	switch {
	case head.APIVersion == karpenterNodePoolAPIVersion && head.Kind == "NodePool":
	case head.APIVersion == karpenterEC2NodeClassAPIVersion && head.Kind == "EC2NodeClass":
	case head.APIVersion == karpenterNodeOverlayAPIVersion && head.Kind == "NodeOverlay":
	case karpenter && version != "v1":
		return fail(object, fmt.Errorf("%s %s is Karpenter %s; convert takes Karpenter v1 (%s NodePool, %s EC2NodeClass, %s NodeOverlay): migrate to v1 first (Karpenter's v1 upgrade guide) or export the v1 objects with kubectl get -o yaml",
			head.APIVersion, head.Kind, version, karpenterNodePoolAPIVersion, karpenterEC2NodeClassAPIVersion, karpenterNodeOverlayAPIVersion))
	case head.Kind == "NodePool" && group == karpenterAWSGroup, head.Kind == "EC2NodeClass" && group == karpenterGroup:
		return fail(object, fmt.Errorf("apiVersion %s is wrong for kind %s: use %s NodePool or %s EC2NodeClass",
			head.APIVersion, head.Kind, karpenterNodePoolAPIVersion, karpenterEC2NodeClassAPIVersion))
	default:
		l.input.Warnings = append(l.input.Warnings, Warning{
			Object:  fmt.Sprintf("%s: document %d (%s %s)", src.File, src.Document, head.APIVersion, object),
			Message: fmt.Sprintf("%sis not a Karpenter v1 NodePool or EC2NodeClass, or a v1alpha1 NodeOverlay; ignored", prefix(item)),
		})
		return nil
	}
	if head.Metadata.Name == "" {
		return fail(head.Kind, errors.New("metadata.name is required"))
	}

	var target any
	switch head.Kind {
	case "NodePool":
		pool := &karpenterNodePool{}
		target = pool
		defer func() { l.input.NodePools = append(l.input.NodePools, &NodePoolSource{Source: src, pool: pool}) }()
	case "NodeOverlay":
		o := &karpenterNodeOverlay{}
		target = o
		defer func() {
			l.input.NodeOverlays = append(l.input.NodeOverlays, &NodeOverlaySource{Source: src, overlay: o})
		}()
	case "EC2NodeClass":
		class := &karpenterEC2NodeClass{}
		target = class
		defer func() {
			l.input.EC2NodeClasses = append(l.input.EC2NodeClasses, &EC2NodeClassSource{Source: src, class: class})
		}()
	}
	// Strict: a field Karpenter v1 does not have is an error naming its
	// path, not a silently dropped setting.
	jsonData, err := yaml.YAMLToJSON(raw)
	if err != nil {
		return fail(object, err)
	}
	strictErrs, err := kjson.UnmarshalStrict(jsonData, target)
	if err != nil {
		return fail(object, err)
	}
	if len(strictErrs) > 0 {
		return fail(object, fmt.Errorf("%w (not a field of Karpenter v1 %s; check its spelling)", errors.Join(strictErrs...), head.Kind))
	}
	key := head.Kind + "/" + head.Metadata.Name
	if first, ok := l.seen[key]; ok {
		return fail(object, fmt.Errorf("defined twice: first in %s; give each object a unique name", first))
	}
	l.seen[key] = src.String()
	return nil
}

func prefix(item string) string {
	if item == "" {
		return ""
	}
	return item + " "
}
