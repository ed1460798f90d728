package scenario

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// Documents keep their position in the file even when empty or only
// comments are skipped, so errors point at the document the user sees.
func TestReadDocumentsNumbersEveryDocument(t *testing.T) {
	data := "a: 1\n---\n\n---\n# only a comment\n---\nb: 2\n---\nkind: X\n"
	var seen []string
	errs := ReadDocuments("f.yaml", []byte(data), func(doc int, raw []byte) error {
		seen = append(seen, fmt.Sprintf("%d:%s", doc, strings.TrimSpace(string(raw))))
		if doc == 5 {
			return &InputError{File: "f.yaml", Document: doc, Err: errors.New("bad")}
		}
		return nil
	})
	if want := []string{"1:a: 1", "4:b: 2", "5:kind: X"}; !reflect.DeepEqual(seen, want) {
		t.Errorf("documents read: %q, want %q", seen, want)
	}
	if len(errs) != 1 || errs[0].Error() != "f.yaml: document 5: bad" {
		t.Errorf("errors: %v, want the one for document 5", errs)
	}
}

func TestReadHeadNeedsAPIVersionAndKind(t *testing.T) {
	for raw, want := range map[string]string{
		"kind: Pod":                       "apiVersion and kind are required",
		"[1, 2]":                          "not a Kubernetes object",
		"apiVersion: v1\nkind: Pod\nx: 1": "",
	} {
		_, err := ReadHead([]byte(raw))
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && !strings.Contains(got, want) {
			t.Errorf("ReadHead(%q) = %v, want %q", raw, err, want)
		}
	}
}
