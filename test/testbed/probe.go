package testbed

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"
)

// FreeAddr is a loopback address with a port free at the time of the call,
// for a process the harness starts (a manager's metrics or profiler).
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Samples reads every series of one metric from a Prometheus endpoint at
// url, keyed by the series' label text ({controller="provisioning",...};
// "" for a metric without labels).
func Samples(url, metric string) (map[string]float64, error) {
	resp, err := scrape(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), metric)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		labels, value := "", strings.TrimSpace(rest)
		if rest[0] == '{' {
			end := strings.LastIndex(rest, "}")
			if end < 0 {
				continue
			}
			labels, value = rest[:end+1], strings.TrimSpace(rest[end+1:])
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s%s: %w", metric, labels, err)
		}
		out[labels] = v
	}
	return out, sc.Err()
}

// MetricsText is everything a metrics endpoint serves, as text.
func MetricsText(url string) ([]byte, error) {
	resp, err := scrape(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

func scrape(url string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Uncompressed: gzipping every scrape would be the process's CPU
	// counted as its own work.
	req.Header.Set("Accept-Encoding", "identity")
	hc := http.Client{Timeout: 5 * time.Second}
	return hc.Do(req)
}

// HeapAllocBytes reads a Go process's heap in use
// (go_memstats_heap_alloc_bytes) from its Prometheus endpoint at url.
//
// It asks for that one family (client_golang's name[] filter): the bench
// samples the heap once a second through a burst, and encoding every
// family each time was measured as the manager's own CPU (up to 6% of a
// 5x100 burst's profile; 3.7 -> 3.4 ms per pod side by side). A handler without the filter still answers
// with every family, which the scan below reads as before.
func HeapAllocBytes(url string) (float64, error) {
	u, err := neturl.Parse(url)
	if err != nil {
		return 0, err
	}
	q := u.Query()
	q.Set("name[]", heapAllocMetric)
	u.RawQuery = q.Encode()
	resp, err := scrape(u.String())
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), heapAllocMetric+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no " + heapAllocMetric + " in the metrics")
}

const heapAllocMetric = "go_memstats_heap_alloc_bytes"
