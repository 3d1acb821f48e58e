// Command idle says it is ready and waits to be stopped: the smallest
// well-behaved service, for the many example.
package main

import (
	"context"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(0)
	host, err := os.Hostname()
	if err != nil {
		log.Fatalf("idle: read hostname: %v", err)
	}
	// The handler is what makes the stop graceful: as PID 1 of its pid
	// namespace a program without one ignores SIGTERM.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	start := time.Now()
	log.Printf("%s ready as pid %d", host, os.Getpid())
	<-ctx.Done()
	log.Printf("%s stopping after %v", host, time.Since(start).Round(time.Millisecond))
}
