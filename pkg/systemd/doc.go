// Package systemd speaks the two protocols a service shares with systemd,
// without libsystemd: sd_notify(3) (readiness, reload, stop, status and
// watchdog messages on a unix datagram socket) and sd_listen_fds(3) (serving
// sockets the service manager opened and passed as file descriptors 3, 4, …).
//
// It reads no environment itself: the command reads NOTIFY_SOCKET,
// WATCHDOG_USEC, WATCHDOG_PID, LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES,
// unsets them (so that no child inherits them), and passes their values
// here.
package systemd
