package testbed

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards TCP connections to a workload apiserver, and can cut
// them: the management side (CAPI's ClusterCache, Joinery) then finds the
// workload cluster unreachable, as during a network partition, while the
// cluster itself, its kubelets and the tests' own clients carry on.
type Proxy struct {
	target   string
	listener net.Listener

	mu       sync.Mutex
	cut      bool
	conns    map[net.Conn]struct{}
	cutSince time.Time
	cutTotal time.Duration
}

func newProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, listener: l, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

// Addr is host:port of the proxy.
func (p *Proxy) Addr() string { return p.listener.Addr().String() }

func (p *Proxy) serve() {
	for {
		in, err := p.listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		go p.forward(in)
	}
}

func (p *Proxy) forward(in net.Conn) {
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		_ = in.Close()
		return
	}
	p.mu.Unlock()
	out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = in.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		_ = in.Close()
		_ = out.Close()
		return
	}
	p.conns[in], p.conns[out] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(out, in); done <- struct{}{} }()
	go func() { _, _ = io.Copy(in, out); done <- struct{}{} }()
	<-done
	_ = in.Close()
	_ = out.Close()
	p.mu.Lock()
	delete(p.conns, in)
	delete(p.conns, out)
	p.mu.Unlock()
}

// Cut drops every open connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut, p.cutSince = true, time.Now()
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.cut {
		return
	}
	p.cut = false
	p.cutTotal += time.Since(p.cutSince)
}

// Unreachable is how long the proxy has been cut in total.
func (p *Proxy) Unreachable() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.cutTotal
	if p.cut {
		d += time.Since(p.cutSince)
	}
	return d
}

func (p *Proxy) close() {
	_ = p.listener.Close()
	p.Cut()
}
