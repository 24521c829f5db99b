package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/seclisten/seclisten/pkg/config"
	"github.com/seclisten/seclisten/pkg/exchange"
	"github.com/seclisten/seclisten/pkg/listener"
	"github.com/seclisten/seclisten/pkg/output"
)

// Run listens as cfg says and serves until ctx ends, then shuts down
// gracefully within cfg.ShutdownTimeout. Messages are printed on stdout;
// everything else goes to log. cfg must have passed Validate.
//
// Run returns nil after a shutdown, even one that had to close connections
// when the timeout ran out (that is logged), and an error when it could not
// start.
func Run(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.ListenAddr())
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.ListenAddr(), err)
	}
	return Serve(ctx, ln, cfg, log, stdout)
}

// Serve is Run on a listener the caller opened. It closes ln.
func Serve(ctx context.Context, ln net.Listener, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	format := output.Text
	if cfg.JSON {
		format = output.JSON
	}
	h := &handler{
		log:     log,
		printer: output.New(stdout, format),
		opts: exchange.Options{
			Reply:   []byte(cfg.Reply),
			MaxLine: cfg.MaxLine,
			Once:    cfg.Once,
		},
	}
	srv := listener.New(listener.Options{
		MaxConns:     cfg.MaxConns,
		IdleTimeout:  cfg.IdleTimeout,
		WriteTimeout: cfg.WriteTimeout,
		Logger:       log,
	}, h.serve)

	log.Info("listening", "addr", ln.Addr().String(), "mode", "plain",
		"max_line", cfg.MaxLine, "idle_timeout", cfg.IdleTimeout, "max_conns", cfg.MaxConns)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		_ = ln.Close()
		return fmt.Errorf("serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}

	log.Info("shutting down: finishing what clients already sent",
		"active_conns", srv.Active(), "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, listener.ErrServerClosed) {
		log.Warn("accept loop ended with an error", "err", err)
	}
	log.Info("stopped")
	return nil
}

type handler struct {
	log     *slog.Logger
	printer *output.Printer
	opts    exchange.Options
}

func (h *handler) serve(_ context.Context, c *listener.Conn) {
	remote := c.RemoteAddr().String()
	p := h.printer.Conn(c.ID(), remote)
	p.Connect(remote, c.LocalAddr().String())
	h.log.Debug("connection opened", "conn_id", c.ID(), "remote_addr", remote)

	res := exchange.Run(c, h.opts, p)

	reason := res.End.String()
	switch res.End {
	case exchange.EndReadError:
		reason = listener.Reason(res.Err)
		if reason == "timeout" {
			reason = "idle timeout"
		}
	case exchange.EndWriteError:
		reason = "write failed: " + listener.Reason(res.Err)
	}
	d := time.Since(c.Start())
	p.Close(output.Summary{
		Reason: reason, Messages: res.Messages,
		BytesIn: res.BytesIn, BytesOut: res.BytesOut, Duration: d,
	})
	h.log.Debug("connection closed", "conn_id", c.ID(), "remote_addr", remote, "reason", reason,
		"messages", res.Messages, "bytes_in", res.BytesIn, "bytes_out", res.BytesOut, "duration", d)
}
