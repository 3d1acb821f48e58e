// Command worker is the web example's background job: it hashes a buffer
// at a steady pace and logs one line per round, so that its output
// interleaves with the others' in `stack up` and `stack logs`.
package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"log"
	"os/signal"
	"runtime"
	"syscall"
	"time"
)

func main() {
	every := flag.Duration("every", 500*time.Millisecond, "pause between rounds")
	size := flag.Int("kib", 1024, "KiB hashed per round (the worker's working set)")
	flag.Parse()
	log.SetFlags(0)

	// A handler of its own: as PID 1 of its pid namespace the worker would
	// otherwise ignore SIGTERM and `stack down` would have to SIGKILL it.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	buf := make([]byte, *size<<10)
	sum := sha256.Sum256(nil)
	tick := time.NewTicker(*every)
	defer tick.Stop()
	for round := 1; ; round++ {
		// Each round folds the previous digest into the buffer, so that
		// the work cannot be skipped and the digest is reproducible.
		for i := 0; i < len(buf); i += len(sum) {
			copy(buf[i:], sum[:])
		}
		sum = sha256.Sum256(buf)
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		log.Printf("round %d: hashed %d KiB, digest %x, heap %d KiB", round, *size, sum[:4], ms.HeapAlloc>>10)
		select {
		case <-ctx.Done():
			log.Printf("stopping after %d rounds", round)
			return
		case <-tick.C:
		}
	}
}
