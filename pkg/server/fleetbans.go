package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/seclisten/seclisten/pkg/fleet"
	"github.com/seclisten/seclisten/pkg/internal/ban"
	"github.com/seclisten/seclisten/pkg/outcome"
)

// setupFleetBans shares the ban table with the fleet: the bans this
// replica makes are published, the others' applied at once, and a lift
// on any replica lifts the ban everywhere.
func (s *Server) setupFleetBans() {
	t, log := s.h.bans, s.log
	s.fleet.bans = fleet.NewBans(s.fleet.client, fleet.BanOptions{
		Replica: s.fleet.replica,
		Apply:   func(r fleet.BanRecord) { imposeBan(t, log, r) },
		Lift: func(key, origin string) {
			if lifted, ok, _ := t.Lift(key); ok {
				log.Info("unban "+lifted.Key+" (lifted, from replica "+origin+")", "key", lifted.Key, "lifted", true,
					"from_replica", origin)
			}
		},
		Local: func() []fleet.BanRecord {
			var out []fleet.BanRecord
			for _, b := range t.List() {
				out = append(out, banRecord(b))
			}
			return out
		},
		Event:  s.metrics.FleetBans(),
		Logger: log,
		After:  s.cfg.Bans.After,
		Window: s.cfg.Bans.Window,
		Reached: func(key, reason string, count int) bool {
			addr, err := t.ParseKey(key)
			if err != nil {
				return false
			}
			b, ok := t.Reached(addr, outcome.Code(reason), count)
			if ok {
				s.metrics.Banned(b.LastReason)
				logBan(log, b.Message()+" (counted by the fleet)", b, "fleet_failures", true)
				s.fleet.bans.Publish(banRecord(b))
			}
			return ok
		},
	})
	s.h.banned = s.fleet.bans.Publish
	s.h.failed = s.fleet.bans.Failed
}

// logBan logs a ban in the fixed form of ban.Ban.Message (msg, perhaps
// with a suffix), with its fields.
func logBan(log *slog.Logger, msg string, b ban.Ban, extra ...any) {
	log.Warn(msg, append([]any{"key", b.Key, "for", b.For, "count", b.Count, "window", b.Window, "last", b.LastReason,
		"until", b.Until.UTC().Format(time.RFC3339)}, extra...)...)
}

// banRecord is a ban as the fleet shares it.
func banRecord(b ban.Ban) fleet.BanRecord {
	return fleet.BanRecord{Key: b.Key, Since: b.Since, Until: b.Until, Count: b.Count,
		LastReason: string(b.LastReason), Window: b.Window}
}

// imposeBan applies a ban of another replica, and logs it as strike logs
// its own, naming the replica:
//
//	ban 203.0.113.7 for 10m0s after 10 failures in 1m0s (last: not-tls) (from replica host/1234)
func imposeBan(t *ban.Table, log *slog.Logger, r fleet.BanRecord) {
	b, ok, err := t.Impose(ban.Ban{Key: r.Key, Since: r.Since, Until: r.Until, Count: r.Count,
		LastReason: outcome.Code(r.LastReason), Window: r.Window})
	if err != nil {
		log.Warn("ban from the fleet ignored", "key", r.Key, "from_replica", r.Origin, "err", err)
		return
	}
	if ok {
		logBan(log, b.Message()+" (from replica "+r.Origin+")", b, "from_replica", r.Origin)
	}
}

// liftFleetBan lifts key's ban fleet-wide (a DELETE /bans/KEY): it
// reports whether Redis held one.
func (s *Server) liftFleetBan(key string) bool {
	if s.fleet == nil || s.fleet.bans == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	held, err := s.fleet.bans.Lift(ctx, key)
	if err != nil {
		s.log.Warn("ban not lifted in the fleet", "key", key, "err", err)
	}
	return held
}
