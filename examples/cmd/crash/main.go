// Command crash fails on purpose: it runs for a while, then exits with a
// chosen status. The crashloop example restarts it with a growing delay.
package main

import (
	"flag"
	"log"
	"os"
	"time"
)

func main() {
	after := flag.Duration("after", 200*time.Millisecond, "how long to run before failing")
	code := flag.Int("code", 3, "the exit status to fail with")
	flag.Parse()
	log.SetFlags(0)

	log.Printf("up as pid %d, failing in %v with status %d", os.Getpid(), *after, *code)
	time.Sleep(*after)
	log.Printf("failing now")
	os.Exit(*code)
}
