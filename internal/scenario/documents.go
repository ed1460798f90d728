package scenario

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// ReadDocuments splits multi-document YAML and calls read with each
// document that holds more than whitespace and comments and its 1-based
// position in the file. It returns read's errors, and an InputError for the
// document where the YAML could not be split (the rest of the file is
// unreadable then). Both this package and `joinery convert` read their
// files through it, so documents are numbered and skipped alike.
func ReadDocuments(file string, data []byte, read func(doc int, raw []byte) error) []error {
	var errs []error
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for doc := 1; ; doc++ {
		raw, err := reader.Read()
		if err == io.EOF {
			return errs
		}
		if err != nil {
			return append(errs, &InputError{File: file, Document: doc, Err: err})
		}
		if len(bytes.TrimSpace(raw)) == 0 || isOnlyComments(raw) {
			continue
		}
		if err := read(doc, raw); err != nil {
			errs = append(errs, err)
		}
	}
}

// Head is what a document says about itself before it is decoded as its
// kind; Items are a List's objects, raw.
type Head struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	Items []RawDocument `json:"items"`
}

// ReadHead decodes a document's Head; it fails when the document is not a
// Kubernetes object (no apiVersion or kind).
func ReadHead(raw []byte) (Head, error) {
	var head Head
	if err := yaml.Unmarshal(raw, &head); err != nil {
		return head, fmt.Errorf("not a Kubernetes object: %w", err)
	}
	if head.Kind == "" || head.APIVersion == "" {
		return head, errors.New("apiVersion and kind are required")
	}
	return head, nil
}

// RawDocument is a raw JSON or YAML value, kept as bytes for a second
// decoding.
type RawDocument []byte

func (j *RawDocument) UnmarshalJSON(data []byte) error {
	*j = append((*j)[:0], data...)
	return nil
}

func isOnlyComments(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}
