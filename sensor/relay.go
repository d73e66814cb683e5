package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The relay: the runner reaches the app in every mode (rootless, it cannot enter the sandbox's network
// namespace itself) through the sensor, over the control socket it passed at start. Nothing is dialled by
// path: for each connection the runner makes a socket pair and sends one end over the control socket with
// SCM_RIGHTS and the address "HOST:PORT"; the sensor dials that TCP address from inside the sandbox, answers
// "OK\n" (or "ERR reason\n" and closes) on the passed socket, then copies bytes both ways.

// ServeControl serves the runner's relay requests on c until the runner's end closes.
func ServeControl(c *net.UnixConn) {
	buf := make([]byte, 512)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil || (n == 0 && oobn == 0) {
			return
		}
		fds := rights(oob[:oobn])
		if len(fds) == 0 {
			continue
		}
		for _, fd := range fds[1:] {
			unix.Close(fd)
		}
		f := os.NewFile(uintptr(fds[0]), "relay")
		conn, err := net.FileConn(f)
		f.Close()
		if err != nil {
			continue
		}
		go relay(conn, string(buf[:n]))
	}
}

func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if got, err := unix.ParseUnixRights(&m); err == nil {
			fds = append(fds, got...)
		}
	}
	return fds
}

func relay(c net.Conn, addr string) {
	defer c.Close()
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

// Control is the runner's end of the control socket.
type Control struct {
	mu sync.Mutex
	c  *net.UnixConn
}

// NewControlPair makes the control socket: the runner keeps the Control, the sensor gets the file (as
// ControlFD).
func NewControlPair() (*Control, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("making the control socket: %w", err)
	}
	mine := os.NewFile(uintptr(fds[0]), "control")
	c, err := net.FileConn(mine)
	mine.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, err
	}
	return &Control{c: c.(*net.UnixConn)}, os.NewFile(uintptr(fds[1]), "control"), nil
}

// Close closes the runner's end: the sensor then kills the sandbox.
func (c *Control) Close() error { return c.c.Close() }

// Dial asks the sensor to connect to addr inside the sandbox, and returns the relayed connection.
func (c *Control) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if len(addr) > 256 {
		return nil, fmt.Errorf("relay to %s: address too long", addr)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	_, _, err = c.c.WriteMsgUnix([]byte(addr), unix.UnixRights(fds[1]), nil)
	c.mu.Unlock()
	unix.Close(fds[1])
	f := os.NewFile(uintptr(fds[0]), "relay")
	conn, cerr := net.FileConn(f)
	f.Close()
	if err != nil || cerr != nil {
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("relay to %s: %w", addr, errors.Join(err, cerr))
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	line, err := readLine(conn, 4096)
	stop()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("relay to %s: %w", addr, err)
	}
	if line != "OK" {
		conn.Close()
		msg := strings.TrimPrefix(line, "ERR ")
		if strings.Contains(msg, "connection refused") {
			// Nothing listens there (yet): callers retry on this.
			return nil, fmt.Errorf("relay to %s: %w", addr, syscall.ECONNREFUSED)
		}
		return nil, fmt.Errorf("relay to %s: %s", addr, msg)
	}
	conn.SetDeadline(time.Time{})
	return conn, nil
}
