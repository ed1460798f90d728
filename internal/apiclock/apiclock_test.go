package apiclock

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/rest"
)

// A server whose clock is off by skew from the manager's; the clock must
// read the server's time whichever way the skew goes.
func TestNowFollowsTheServersClock(t *testing.T) {
	for _, skew := range []time.Duration{-20 * time.Minute, 0, 7 * time.Minute, 30 * time.Hour} {
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Date", time.Now().Add(skew).UTC().Format(http.TimeFormat))
		}))
		c := New(time.Now)
		if _, ok := c.Offset(); ok {
			t.Fatal("an offset before any response")
		}
		cfg := &rest.Config{Host: server.URL}
		c.Wrap(cfg)
		hc, err := rest.HTTPClientFor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Get(server.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		server.Close()
		offset, ok := c.Offset()
		if !ok {
			t.Fatalf("skew %s: no offset learnt", skew)
		}
		if d := offset - skew; d < -time.Second || d > time.Second {
			t.Errorf("skew %s: offset %s", skew, offset)
		}
		if d := c.Now().Sub(time.Now().Add(skew)); d < -time.Second || d > time.Second {
			t.Errorf("skew %s: Now is %s off the server's clock", skew, d)
		}
	}
}

func TestAResponseWithoutADateTeachesNothing(t *testing.T) {
	c := New(time.Now)
	c.observe("", time.Now())
	c.observe("yesterday", time.Now())
	if _, ok := c.Offset(); ok {
		t.Error("learnt an offset from no date")
	}
}

// The manager's clock shows its offset as a gauge; a clock not asked to
// (a test's, a second one) leaves it alone.
func TestExportedOffsetIsTheGauge(t *testing.T) {
	skew := -7 * time.Minute
	at := time.Now()
	date := at.Add(skew).UTC().Format(http.TimeFormat)

	quiet := New(time.Now)
	offsetGauge.Set(0)
	quiet.observe(date, at)
	if got := testutil.ToFloat64(offsetGauge); got != 0 {
		t.Errorf("a clock that does not export set the gauge to %v", got)
	}

	c := New(time.Now)
	c.ExportMetric()
	c.observe(date, at)
	offset, _ := c.Offset()
	if got := testutil.ToFloat64(offsetGauge); got != offset.Seconds() || got > skew.Seconds()+1 || got < skew.Seconds()-1 {
		t.Errorf("joinery_apiserver_clock_offset_seconds = %v, want the offset %v (skew %s)", got, offset.Seconds(), skew)
	}
}
