package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"
)

// Relay serves the runner's connections on ln until it is closed. Each connection sends one line,
// "HOST:PORT\n"; the sensor dials that TCP address from inside the sandbox, answers "OK\n" (or "ERR
// reason\n" and closes), then copies bytes both ways. The runner reaches the app this way in every mode:
// rootless, it cannot enter the sandbox's network namespace itself.
func Relay(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go relay(c)
	}
}

func relay(c net.Conn) {
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	addr, err := readLine(c, 256)
	if err != nil {
		return
	}
	c.SetReadDeadline(time.Time{})
	up, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		fmt.Fprintf(c, "ERR %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	defer up.Close()
	if _, err := io.WriteString(c, "OK\n"); err != nil {
		return
	}
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, c); closeWrite(up); done <- struct{}{} }()
	go func() { io.Copy(c, up); closeWrite(c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// readLine reads up to '\n' a byte at a time, so that nothing after it is consumed.
func readLine(r io.Reader, max int) (string, error) {
	var b []byte
	one := make([]byte, 1)
	for len(b) < max {
		if _, err := io.ReadFull(r, one); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return string(b), nil
		}
		b = append(b, one[0])
	}
	return "", errors.New("line too long")
}

// DialRelay asks the sensor listening at the unix socket sock to connect to addr, and returns the relayed
// connection.
func DialRelay(ctx context.Context, sock, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if _, err := io.WriteString(c, addr+"\n"); err != nil {
		c.Close()
		return nil, err
	}
	line, err := readLine(c, 4096)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("relay to %s: %w", addr, err)
	}
	if line != "OK" {
		c.Close()
		msg := strings.TrimPrefix(line, "ERR ")
		if strings.Contains(msg, "connection refused") {
			// Nothing listens there (yet): callers retry on this.
			return nil, fmt.Errorf("relay to %s: %w", addr, syscall.ECONNREFUSED)
		}
		return nil, fmt.Errorf("relay to %s: %s", addr, msg)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
