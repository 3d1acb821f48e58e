// Command server is the web example's HTTP server. It listens on a loopback
// address of its container's own net namespace, so only containers that join
// that namespace (the client) can reach it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	// stack prefixes every line with the container's name and, on request,
	// a timestamp: the program adds neither.
	log.SetFlags(0)
	if err := serve(*addr); err != nil {
		log.Fatalf("server: %v", err)
	}
}

func serve(addr string) error {
	host, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("read hostname: %w", err)
	}
	var served atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		log.Printf("%s %s from %s (request #%d)", r.Method, r.URL.Path, r.RemoteAddr, n)
		fmt.Fprintf(w, "hello #%d from %s (pid %d)\n", n, host, os.Getpid())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}

	// Listen before announcing, so that the "listening" line is a promise.
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	log.Printf("listening on http://%s as %s (pid %d)", ln.Addr(), host, os.Getpid())

	// As PID 1 of its pid namespace the server gets no default signal
	// handling: without this handler `stack down` would have to SIGKILL it.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve on %s: %w", addr, err)
	}
	log.Printf("stopped after %d requests", served.Load())
	return nil
}
