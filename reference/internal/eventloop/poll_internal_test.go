//go:build linux

package eventloop

import "testing"

func TestPollerParksInGoPoller(t *testing.T) {
	p, err := newPoller()
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	if p.rc == nil {
		t.Fatal("the epoll descriptor was not registered with Go's poller; loops would block in epoll_wait")
	}
}
