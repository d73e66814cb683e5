package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PortMapping publishes one of the app's TCP ports on the host's loopback while it is observed
// (--publish-port): connections to HostIP:HostPort are relayed to the app's Port inside the sandbox.
type PortMapping struct {
	// HostIP is a loopback address; HostPort 0 picks a free port.
	HostIP   string `json:"hostIP"`
	HostPort int    `json:"hostPort"`
	Port     int    `json:"port"`
}

// PublishedPort is a published port as bound.
type PublishedPort struct {
	Port     int    `json:"port"`
	HostAddr string `json:"hostAddr"`
}

// ErrNotLoopback is a --publish-port host address that is not a loopback one: slimoci binds nothing else.
var ErrNotLoopback = errors.New("slimoci publishes on the host's loopback only")

// ParsePublish reads docker's and mint's -p syntax: PORT, HOSTPORT:PORT, HOSTIP:HOSTPORT:PORT or
// HOSTIP::PORT, with an optional /tcp. PORT alone is published on the same host port (as mint; docker
// would pick one); an empty HOSTPORT or 0 picks a free one. HOSTIP must be a loopback address (IPv6 in
// brackets), 127.0.0.1 when none is given: the app is never reachable from beyond the host, whatever docker
// would have bound (0.0.0.0 is refused).
func ParsePublish(s string) (PortMapping, error) {
	spec, proto, _ := strings.Cut(s, "/")
	if proto != "" && proto != "tcp" {
		return PortMapping{}, fmt.Errorf("--publish-port %q: only TCP ports are relayed", s)
	}
	host := ""
	if strings.HasPrefix(spec, "[") {
		end := strings.Index(spec, "]:")
		if end < 0 {
			return PortMapping{}, fmt.Errorf("--publish-port %q: want [IPv6]:HOSTPORT:PORT", s)
		}
		host, spec = spec[1:end], spec[end+2:]
		if !strings.Contains(spec, ":") {
			return PortMapping{}, fmt.Errorf("--publish-port %q: want [IPv6]:HOSTPORT:PORT", s)
		}
	}
	parts := strings.Split(spec, ":")
	if host == "" && len(parts) == 3 {
		host, parts = parts[0], parts[1:]
	}
	var hostPort, port string
	switch len(parts) {
	case 1:
		hostPort, port = parts[0], parts[0]
	case 2:
		hostPort, port = parts[0], parts[1]
	default:
		return PortMapping{}, fmt.Errorf("--publish-port %q: want PORT, HOSTPORT:PORT, HOSTIP:HOSTPORT:PORT or HOSTIP::PORT", s)
	}
	m := PortMapping{HostIP: "127.0.0.1"}
	if host != "" {
		ip := net.ParseIP(host)
		if host == "localhost" {
			ip = net.IPv4(127, 0, 0, 1)
		}
		if ip == nil {
			return PortMapping{}, fmt.Errorf("--publish-port %q: %q is not an IP address", s, host)
		}
		if !ip.IsLoopback() {
			return PortMapping{}, fmt.Errorf("--publish-port %q: %s is not a loopback address: %w", s, host, ErrNotLoopback)
		}
		m.HostIP = ip.String()
	}
	var err error
	if m.Port, err = portNumber(port, false); err != nil {
		return PortMapping{}, fmt.Errorf("--publish-port %q: %w", s, err)
	}
	if m.HostPort, err = portNumber(hostPort, true); err != nil {
		return PortMapping{}, fmt.Errorf("--publish-port %q: host %w", s, err)
	}
	return m, nil
}

func portNumber(s string, zeroOK bool) (int, error) {
	if s == "" && zeroOK {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !zeroOK) {
		return 0, fmt.Errorf("port %q is not a port number", s)
	}
	return n, nil
}

// publishDialTimeout bounds the relay's connection to the app for one published connection.
const publishDialTimeout = 10 * time.Second

// publish listens on each mapping's host address and relays every connection to the app's port through
// Dial (the sensor's relay: it works in the sandbox's own network, root or rootless). It returns the
// addresses bound and a stop function, which closes the listeners and every relayed connection and waits
// for the relays to end. Nothing is bound if one address cannot be.
func (s *Sandbox) publish(ctx context.Context, maps []PortMapping) ([]PublishedPort, func(), error) {
	if len(maps) > 0 && s.spec.HostNetwork {
		return nil, nil, errors.New("--publish-port: with --network host the app's ports are the host's already")
	}
	for _, m := range maps {
		// ParsePublish checks this for the CLI; a library caller is held to it here.
		if ip, err := netip.ParseAddr(m.HostIP); err != nil || !ip.IsLoopback() {
			return nil, nil, fmt.Errorf("publishing port %d on %q: %w", m.Port, m.HostIP, ErrNotLoopback)
		}
	}
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		listeners []net.Listener
		conns     = map[net.Conn]bool{}
		stopped   bool
	)
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			c.Close()
			return false
		}
		conns[c] = true
		return true
	}
	untrack := func(c net.Conn) {
		mu.Lock()
		delete(conns, c)
		mu.Unlock()
		c.Close()
	}
	stop := func() {
		mu.Lock()
		stopped = true
		for _, l := range listeners {
			l.Close()
		}
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
	var out []PublishedPort
	for _, m := range maps {
		l, err := net.Listen("tcp", net.JoinHostPort(m.HostIP, strconv.Itoa(m.HostPort)))
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("publishing port %d: %w", m.Port, err)
		}
		listeners = append(listeners, l)
		out = append(out, PublishedPort{Port: m.Port, HostAddr: l.Addr().String()})
		target := net.JoinHostPort("127.0.0.1", strconv.Itoa(m.Port))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				if !track(c) {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer untrack(c)
					dctx, cancel := context.WithTimeout(ctx, publishDialTimeout)
					app, err := s.Dial(dctx, "tcp", target)
					cancel()
					if err != nil {
						s.log.Debug("publish: the app did not take a connection", "port", m.Port, "err", err)
						return
					}
					if !track(app) {
						return
					}
					defer untrack(app)
					relay(c, app)
				}()
			}
		}()
	}
	return out, stop, nil
}

// relay copies both ways until both directions end, passing on each half-close.
func relay(a, b net.Conn) {
	var wg sync.WaitGroup
	half := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
	}
	wg.Add(2)
	go half(a, b)
	go half(b, a)
	wg.Wait()
}
