package metrics_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	// The manager's assembly imports every controller package, so every
	// metric the joinery binary registers is registered here too.
	_ "github.com/joinery-dev/joinery/internal/manager"
	"github.com/joinery-dev/joinery/internal/metrics"
)

// family is a metric as registered: its type and variable labels.
type family struct {
	kind   string
	labels []string
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]*)"`)
	descLabels = regexp.MustCompile(`variableLabels: \{([^}]*)\}\}$`)
	metricName = regexp.MustCompile(`\bjoinery_[a-z0-9_]+`)
)

// registered describes every collector registered through
// metrics.MustRegister, and checks it is in controller-runtime's registry.
func registered(t *testing.T) map[string]family {
	t.Helper()
	out := map[string]family{}
	for _, c := range metrics.Registered() {
		var kind string
		// Gauge first: a Gauge has every method of a Counter, so a
		// label-less gauge would also match the Counter interface.
		switch c.(type) {
		case prometheus.Gauge, *prometheus.GaugeVec:
			kind = "gauge"
		case prometheus.Counter, *prometheus.CounterVec:
			kind = "counter"
		case prometheus.Histogram, *prometheus.HistogramVec:
			kind = "histogram"
		case prometheus.Summary, *prometheus.SummaryVec:
			kind = "summary"
		default:
			t.Fatalf("collector %T: the reference test knows counters, gauges, histograms and summaries", c)
		}
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			s := d.String()
			name, labels := descName.FindStringSubmatch(s), descLabels.FindStringSubmatch(s)
			if name == nil || labels == nil {
				t.Fatalf("cannot read the name and labels of %s", s)
			}
			f := family{kind: kind}
			if labels[1] != "" {
				f.labels = strings.Split(labels[1], ",")
			}
			out[name[1]] = f
		}
		var already prometheus.AlreadyRegisteredError
		if err := crmetrics.Registry.Register(c); !errors.As(err, &already) {
			t.Errorf("a collector of %v is not in controller-runtime's registry (registering it again: %v)", c, err)
		}
	}
	// A joinery_* metric registered without metrics.MustRegister would be
	// served but escape these checks; one with series at least shows.
	got, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range got {
		if _, ok := out[mf.GetName()]; strings.HasPrefix(mf.GetName(), "joinery_") && !ok {
			t.Errorf("%s is registered directly in controller-runtime's registry; register it with metrics.MustRegister", mf.GetName())
		}
	}
	if len(out) == 0 {
		t.Fatal("no metric registered: the controller packages were not imported")
	}
	return out
}

// known reports whether name is a metric or one of a histogram's series.
func known(families map[string]family, name string) bool {
	if _, ok := families[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := families[strings.TrimSuffix(name, suffix)]; ok && strings.HasSuffix(name, suffix) && (f.kind == "histogram" || (f.kind == "summary" && suffix != "_bucket")) {
			return true
		}
	}
	return false
}

var docRow = regexp.MustCompile("^\\| `(joinery_[a-z0-9_]+)` \\| ([a-z]+) \\|([^|]*)\\|")

func TestMetricsReferenceListsEveryRegisteredMetric(t *testing.T) {
	families := registered(t)
	for name := range families {
		if !strings.HasPrefix(name, "joinery_") {
			t.Errorf("metric %s: Joinery's metrics are named joinery_*", name)
		}
	}
	b, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		m := docRow.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		name, kind := m[1], m[2]
		var labels []string
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" {
				labels = append(labels, l)
			}
		}
		if documented[name] {
			t.Errorf("docs/metrics.md:%d: %s is listed twice", i+1, name)
		}
		documented[name] = true
		f, ok := families[name]
		if !ok {
			t.Errorf("docs/metrics.md:%d: %s is documented but no controller registers it; remove the row or register the metric", i+1, name)
			continue
		}
		if kind != f.kind {
			t.Errorf("docs/metrics.md:%d: %s is documented as a %s but registered as a %s", i+1, name, kind, f.kind)
		}
		want, got := slices.Clone(f.labels), slices.Clone(labels)
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(want, got) {
			t.Errorf("docs/metrics.md:%d: %s is documented with labels %v but registered with %v", i+1, name, labels, f.labels)
		}
	}
	for name := range families {
		if !documented[name] {
			t.Errorf("%s is registered but not in docs/metrics.md; add a row: | `%s` | %s | labels | meaning | Karpenter equivalent |", name, name, families[name].kind)
		}
	}
}

// Every other doc that names a metric names one that exists.
func TestDocsNameOnlyExistingMetrics(t *testing.T) {
	families := registered(t)
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range docs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, name := range metricName.FindAllString(line, -1) {
				if !known(families, name) {
					t.Errorf("%s:%d names %s, which no controller registers", filepath.Base(path), i+1, name)
				}
			}
		}
	}
}

func TestDashboardQueriesOnlyRegisteredMetrics(t *testing.T) {
	families := registered(t)
	b, err := os.ReadFile("../../config/grafana/joinery-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		SchemaVersion int `json:"schemaVersion"`
		Templating    struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Definition string `json:"definition"`
				Datasource struct {
					UID string `json:"uid"`
				} `json:"datasource"`
			} `json:"list"`
		} `json:"templating"`
		Panels []panel `json:"panels"`
	}
	if err := json.Unmarshal(b, &dashboard); err != nil {
		t.Fatalf("config/grafana/joinery-dashboard.json: %v", err)
	}
	if dashboard.SchemaVersion < 39 {
		t.Errorf("schemaVersion %d; the dashboard is written for Grafana 10.4+ (39)", dashboard.SchemaVersion)
	}

	var exprs []string
	vars := map[string]bool{}
	for _, v := range dashboard.Templating.List {
		vars[v.Name] = true
		if v.Type == "query" {
			exprs = append(exprs, v.Definition)
			if v.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("variable %s queries data source %q, want ${DS_PROMETHEUS}", v.Name, v.Datasource.UID)
			}
		}
	}
	for _, name := range []string{"DS_PROMETHEUS", "namespace", "cluster", "nodepool"} {
		if !vars[name] {
			t.Errorf("the dashboard has no variable %s", name)
		}
	}

	ids := map[int]string{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if other, ok := ids[p.ID]; ok {
				t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			for _, tg := range p.Targets {
				if tg.Datasource.UID != "${DS_PROMETHEUS}" {
					t.Errorf("panel %q queries data source %q, want ${DS_PROMETHEUS}", p.Title, tg.Datasource.UID)
				}
				exprs = append(exprs, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dashboard.Panels)
	if len(exprs) < 10 {
		t.Fatalf("found only %d queries in the dashboard", len(exprs))
	}

	used := map[string]bool{}
	for _, e := range exprs {
		names := metricName.FindAllString(e, -1)
		if len(names) == 0 {
			t.Errorf("query %q uses no joinery_* metric", e)
		}
		for _, name := range names {
			if !known(families, name) {
				t.Errorf("query %q uses %s, which no controller registers", e, name)
			}
			used[strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")] = true
		}
	}
	for name := range families {
		if !used[name] {
			t.Logf("the dashboard does not show %s", name)
		}
	}
}

type panel struct {
	ID      int    `json:"id"`
	Title   string `json:"title"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}
