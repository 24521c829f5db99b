package server

import (
	"context"
	"fmt"
	"time"

	"github.com/seclisten/seclisten/pkg/fleet"
)

// fleetState is the replica's link to the fleet's shared state in Redis:
// the ACME storage and the session-ticket keys.
type fleetState struct {
	client  *fleet.Client
	storage *fleet.Storage
	tickets *fleet.Tickets
	back    chan struct{}             // Redis answers again: refresh the keys now
	replica string                    // this replica's name in the fleet (fleet.ReplicaName)
	bans    *fleet.Bans               // nil when bans are off
	synced  func(keys int, err error) // counts the limit syncs
}

// setupFleet connects nothing yet: startFleet does. A URL go-redis cannot
// use is a start-up error; an unreachable Redis never is.
func (s *Server) setupFleet() error {
	f := &fleetState{back: make(chan struct{}, 1), replica: fleet.ReplicaName()}
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
				select {
				case f.back <- struct{}{}:
				default:
				}
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
	return func() {
		cancel()
		<-done
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
