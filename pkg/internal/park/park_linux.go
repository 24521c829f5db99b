package park

import (
	"errors"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Poller waits for readability of all parked connections with one epoll
// instance and one goroutine. Go's own netpoller has the same sockets in
// its epoll set; a second, separate set is allowed and independent.
type Poller struct {
	epfd   int
	wakefd int // an eventfd that ends the loop at Close
	mu     sync.Mutex
	next   uint64
	parked map[uint64]*Waiter
	count  atomic.Int64
	done   chan struct{}
	closed sync.Once
}

// Waiter is one parked connection.
type Waiter struct {
	p     *Poller
	id    uint64
	rc    syscall.RawConn
	wake  func(timedOut bool)
	mu    sync.Mutex // held while parking, so no wake-up sees a half-built Waiter
	fired bool
	timer *time.Timer
}

// New starts a Poller.
func New() (*Poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	wakefd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		_ = unix.Close(epfd)
		return nil, err
	}
	// Token 0 is the eventfd; connections count from 1.
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wakefd, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		_ = unix.Close(epfd)
		_ = unix.Close(wakefd)
		return nil, err
	}
	p := &Poller{epfd: epfd, wakefd: wakefd, parked: make(map[uint64]*Waiter), done: make(chan struct{})}
	go p.loop()
	return p, nil
}

// Park waits for the socket under rc to be readable (bytes, EOF, reset)
// or for deadline (the zero time: none), whichever comes first, then calls
// wake once, with timedOut true if the deadline came first. wake runs on
// the Poller's goroutine or a timer's: it must not block (start a
// goroutine). The socket is out of the Poller's set before wake runs, so
// wake may park it again.
func (p *Poller) Park(rc syscall.RawConn, deadline time.Time, wake func(timedOut bool)) (*Waiter, error) {
	w := &Waiter{p: p, rc: rc, wake: wake}
	w.mu.Lock()
	defer w.mu.Unlock()
	p.mu.Lock()
	if p.parked == nil {
		p.mu.Unlock()
		return nil, errors.New("park: poller closed")
	}
	p.next++
	w.id = p.next
	p.parked[w.id] = w
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT, Fd: int32(w.id), Pad: int32(w.id >> 32)}
	var err error
	if cerr := rc.Control(func(fd uintptr) {
		err = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev)
	}); cerr != nil {
		err = cerr
	}
	if err != nil {
		w.fired = true
		p.forget(w.id)
		return nil, err
	}
	p.count.Add(1)
	if !deadline.IsZero() {
		w.timer = time.AfterFunc(time.Until(deadline), func() { w.fire(true) })
	}
	return w, nil
}

// Wake wakes a parked connection now (as if readable), if it has not
// woken yet.
func (w *Waiter) Wake() { w.fire(false) }

func (w *Waiter) fire(timedOut bool) {
	w.mu.Lock()
	if w.fired {
		w.mu.Unlock()
		return
	}
	w.fired = true
	if w.timer != nil {
		w.timer.Stop()
	}
	w.mu.Unlock()
	// A socket closed meanwhile left the set by itself: Control fails.
	_ = w.rc.Control(func(fd uintptr) {
		_ = unix.EpollCtl(w.p.epfd, unix.EPOLL_CTL_DEL, int(fd), nil)
	})
	w.p.forget(w.id)
	w.p.count.Add(-1)
	w.wake(timedOut)
}

func (p *Poller) forget(id uint64) {
	p.mu.Lock()
	delete(p.parked, id)
	p.mu.Unlock()
}

// Parked is the number of connections parked now.
func (p *Poller) Parked() int { return int(p.count.Load()) }

func (p *Poller) loop() {
	defer close(p.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		for i := range events[:n] {
			id := uint64(uint32(events[i].Fd)) | uint64(uint32(events[i].Pad))<<32
			if id == 0 {
				return // Close
			}
			p.mu.Lock()
			w := p.parked[id]
			p.mu.Unlock()
			if w != nil {
				w.fire(false)
			}
		}
	}
}

// Close wakes every parked connection, stops the Poller's goroutine and
// releases its file descriptors.
func (p *Poller) Close() error {
	p.closed.Do(func() {
		p.mu.Lock()
		ws := make([]*Waiter, 0, len(p.parked))
		for _, w := range p.parked {
			ws = append(ws, w)
		}
		p.parked = nil
		p.mu.Unlock()
		for _, w := range ws {
			w.Wake()
		}
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		_, _ = unix.Write(p.wakefd, one)
		<-p.done
		_ = unix.Close(p.epfd)
		_ = unix.Close(p.wakefd)
	})
	return nil
}
