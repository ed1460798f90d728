package cloudsim

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// localEndpoint serves one simulated AWS API over HTTP, by default on a
// free loopback port; SQS and EC2 each embed one.
type localEndpoint struct {
	mu     sync.Mutex
	url    string
	server *http.Server
	done   chan struct{}
}

// start serves h on addr ("127.0.0.1:0" when empty); api names the
// service in errors.
func (l *localEndpoint) start(api, addr string, h http.Handler) error {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("simulated %s: listening on %s: %w", api, addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	l.mu.Lock()
	l.url = "http://" + ln.Addr().String()
	l.server, l.done = srv, done
	l.mu.Unlock()
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	return nil
}

// Close stops the server: from then on the endpoint refuses connections,
// as an unreachable AWS would, and requests in progress (long polls) end.
func (l *localEndpoint) Close() error {
	l.mu.Lock()
	srv, done := l.server, l.done
	l.server = nil
	l.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = srv.Close()
	}
	<-done
	return err
}

// URL is the endpoint to give the SDK (Options.BaseEndpoint), empty until
// the endpoint starts.
func (l *localEndpoint) URL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.url
}
