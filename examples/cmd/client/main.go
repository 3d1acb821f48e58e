// Command client is the web example's client: it calls the server over the
// loopback interface of the net namespace it shares with it, at a steady
// pace, and logs each answer.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/", "the URL to call")
	every := flag.Duration("every", time.Second, "pause between calls")
	count := flag.Int("n", 0, "stop after this many answers (0: until stopped)")
	flag.Parse()
	log.SetFlags(0)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	answers := 0
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for *count == 0 || answers < *count {
		body, err := get(ctx, *url)
		switch {
		case ctx.Err() != nil:
			log.Printf("stopped after %d answers", answers)
			return
		case err != nil:
			// The server may still be starting: depends_on orders the
			// starts, it does not wait for the server to listen.
			log.Printf("%v (retrying)", err)
		default:
			answers++
			log.Printf("GET %s: %s", *url, body)
		}
		select {
		case <-ctx.Done():
			log.Printf("stopped after %d answers", answers)
			return
		case <-tick.C:
		}
	}
	log.Printf("done after %d answers", answers)
}

// get returns the body of a 200 answer to a GET of url, trimmed.
func get(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if err != nil {
		return "", fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return strings.TrimSpace(string(body)), nil
}
