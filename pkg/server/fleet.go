package server

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/seclisten/seclisten/pkg/fleet"
)

// fleetState is the replica's link to the fleet's shared state in Redis:
// the ACME storage and the session-ticket keys.
type fleetState struct {
	client  *fleet.Client
	storage *fleet.Storage
	tickets *fleet.Tickets
	back    chan struct{} // Redis answers again: refresh the keys now
	restore chan struct{} // Redis may have lost data: put back the certificates
	// replica names this process in the fleet (fleet.ReplicaName): in the
	// bans it shares and inside the session tickets it issues, so a
	// resumption with another replica's ticket is counted as such.
	replica string
	bans    *fleet.Bans               // nil when bans are off
	synced  func(keys int, err error) // counts the limit syncs
}

// setupFleet connects nothing yet: startFleet does. A URL go-redis cannot
// use is a start-up error; an unreachable Redis never is.
func (s *Server) setupFleet() error {
	f := &fleetState{back: make(chan struct{}, 1), restore: make(chan struct{}, 1), replica: fleet.ReplicaName()}
	var observe func(d time.Duration, err error)
	c, err := fleet.New(fleet.Options{
		URL:    s.cfg.Fleet.Redis,
		Prefix: s.cfg.Fleet.Prefix,
		Logger: s.log,
		Observe: func(d time.Duration, err error) {
			if observe != nil {
				observe(d, err)
			}
		},
		Changed: func(up bool) {
			if up {
				wake(f.back)
				wake(f.restore)
			}
		},
	})
	if err != nil {
		return fmt.Errorf("redis URL: %w", err)
	}
	observe = s.metrics.Redis(c.Up)
	f.synced = s.metrics.FleetLimits()
	f.client = c
	f.storage = fleet.NewStorage(c, s.cfg.Fleet.LockTTL)
	s.fleet = f
	return nil
}

// setupTickets makes the fleet's ticket keys those of every TLS config
// served (tlsconf's configs per material inherit the base config's keys).
func (s *Server) setupTickets() {
	base := s.tls.Config()
	s.fleet.tickets = fleet.NewTickets(s.fleet.client, s.fleet.storage, fleet.TicketOptions{
		Rotation: s.cfg.Fleet.TicketKeyRotation,
		Apply:    func(keys [][32]byte) { base.SetSessionTicketKeys(keys) },
		Logger:   s.log,
		Lost:     func() { wake(s.fleet.restore) },
	})
}

// startFleet pings Redis (logging its state), then keeps the ticket keys
// fresh until stop.
func (s *Server) startFleet(ctx context.Context) (stop func()) {
	f := s.fleet
	f.client.Start(context.WithoutCancel(ctx))
	tctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.tickets.Run(tctx, f.back)
	}()
	restored := make(chan struct{})
	go func() {
		defer close(restored)
		s.restoreCerts(tctx)
	}()
	return func() {
		cancel()
		<-done
		<-restored
		f.storage.Close()
		_ = f.client.Close()
	}
}

// fleetReady is the fleet's part of /readyz: with --redis-fail closed, a
// replica cut from Redis is not ready.
func (s *Server) fleetReady() (bool, string) {
	if s.fleet == nil || !s.cfg.Fleet.FailClosed || s.fleet.client.Up() {
		return true, ""
	}
	return false, "redis unreachable (fail closed)"
}

// redactedURL is a Redis URL without its password, for the log.
func redactedURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Redacted()
}

// wake wakes c's reader unless a wake-up is already pending.
func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// restoreCerts, each time Redis comes back or is found to have lost the
// ticket keys, writes the ACME certificates served from memory back to
// Redis if they are missing there: a Redis restarted empty gets them from
// the replicas' caches, and no replica orders them again.
func (s *Server) restoreCerts(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.fleet.restore:
		}
		if s.acme == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		restored, err := s.acme.Restore(rctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("ACME certificates: could not restore them to redis; will retry when it returns", "err", err)
		case err == nil:
			// Once per return of Redis (or loss found), never per retry.
			s.log.Info("ACME certificates checked in redis", "restored", len(restored))
		}
		cancel()
	}
}
