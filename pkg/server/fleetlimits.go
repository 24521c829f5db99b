package server

import (
	"context"
	"sync"

	"github.com/seclisten/seclisten/pkg/fleet"
)

// startFleetLimits shares the per-IP rate limits of the policy in service,
// and the bans, with the fleet until stop (a no-op without --redis).
func (s *Server) startFleetLimits(ctx context.Context) (stop func()) {
	if s.fleet == nil {
		return func() {}
	}
	l := fleet.NewLimits(s.fleet.client, fleet.LimitOptions{
		Replica: s.fleet.replica,
		Table:   func() fleet.LimitTable { return s.policy.Load().admit },
		Synced:  s.fleet.synced,
		Logger:  s.log,
	})
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { l.Run(ctx) })
	if b := s.fleet.bans; b != nil {
		wg.Go(func() { b.Run(ctx) })
	}
	return func() { cancel(); wg.Wait() }
}
