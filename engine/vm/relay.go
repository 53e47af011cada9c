package vm

import (
	"fmt"
	"io"
	"net"
)

// Relay connects one guest connection to a host TCP address: what a
// GuestForward's Command runs (qemu hands the guest's connection to it as
// stdin and stdout). A binary exposes it as a subcommand, e.g.
// `ferry vm-relay 127.0.0.1:8443`, and names itself in the GuestForward.
func Relay(addr string, in io.Reader, out io.Writer) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return fmt.Errorf("relay to %s: %w", addr, err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := io.Copy(c, in)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		errc <- err
	}()
	_, err = io.Copy(out, c)
	if err != nil {
		return err
	}
	// The host side finished: the guest's request, if still being sent, no
	// longer matters.
	return nil
}
