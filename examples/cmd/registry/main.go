// Command registry serves one image from a registry on the loopback
// interface, for the demo: no image comes from the internet.
//
//	registry [-addr 127.0.0.1:0] -tree DIR [-repo demo/worker:latest]
//
// It packs the tree at DIR (built by mkrootfs) into a one-layer image
// (imagepack, as stack export does) whose entrypoint is the web example's
// worker, pushes it to itself over
// HTTP as any client would, prints the reference to pull on its first line
// of output, and serves until it is interrupted or terminated.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/stack-containers/stack/imagepack"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "address to listen on (loopback only)")
	tree := flag.String("tree", "", "the root filesystem to serve as an image")
	repo := flag.String("repo", "demo/worker:latest", "repository and tag of the image")
	flag.Parse()
	if err := run(*addr, *tree, *repo); err != nil {
		fmt.Fprintf(os.Stderr, "registry: error: %v\n", err)
		os.Exit(1)
	}
}

func run(addr, tree, repo string) error {
	if tree == "" {
		return errors.New("-tree is required")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	if ip := l.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		l.Close()
		return fmt.Errorf("%s is not a loopback address", addr)
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	go srv.Serve(l)
	defer srv.Close()

	img, err := image(tree)
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(l.Addr().String()+"/"+repo, name.Insecure)
	if err != nil {
		return err
	}
	if err := remote.Write(ref, img); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	fmt.Println(ref.Name())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// image is the tree as one layer, run as the worker.
func image(tree string) (v1.Image, error) {
	img, err := imagepack.Image(tree)
	if err != nil {
		return nil, err
	}
	return mutate.Config(img, v1.Config{
		Entrypoint: []string{"/bin/worker"},
		Cmd:        []string{"-every", "500ms"},
		Env:        []string{"PATH=/bin", "GOMAXPROCS=1"},
		User:       "65534:65534",
		WorkingDir: "/",
	})
}
