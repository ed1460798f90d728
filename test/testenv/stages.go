package testenv

import (
	"bytes"
	"embed"
)

//go:embed kwokstages/*.yaml
var kwokStageFiles embed.FS

// kwokStages is every stage definition as one multi-document YAML file,
// the form kwok's --config reads.
var kwokStages = func() []byte {
	entries, err := kwokStageFiles.ReadDir("kwokstages")
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	for _, e := range entries {
		data, err := kwokStageFiles.ReadFile("kwokstages/" + e.Name())
		if err != nil {
			panic(err)
		}
		out.WriteString("---\n")
		out.Write(bytes.TrimSpace(data))
		out.WriteString("\n")
	}
	return out.Bytes()
}()
