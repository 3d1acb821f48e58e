// Command mkrootfs builds the root filesystems the examples run in, offline
// and reproducibly: the same sources, Go toolchain and busybox give
// byte-identical trees.
//
//	mkrootfs [-o DIR] [-src DIR] [TREE...]
//
// It works in three phases:
//
//  1. build: every Go program the chosen trees need is compiled from
//     SRC/cmd/<prog> in one `go build`, static (CGO_ENABLED=0), without
//     paths, VCS stamps or build ids, so that the binary depends only on
//     the sources and the toolchain;
//  2. assemble: each tree is laid out in a fresh temporary directory next
//     to its final place: a busybox rootfs (internal/busybox) or a bare
//     skeleton, then the programs in /bin and the example's own files;
//  3. seal: every mtime is set to the epoch, and the tree is renamed over
//     the previous one, so that a failed build never leaves half a tree.
//
// Trees that need busybox are skipped with a hint when no static busybox is
// installed, unless named on the command line: the Go-only examples still
// run. Each tree's digest is printed, to compare builds across machines.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/stack-containers/stack/internal/busybox"
)

// tree describes one root filesystem.
type tree struct {
	name string
	// busybox asks for a busybox rootfs (a shell and the usual tools).
	busybox bool
	// programs are the Go programs under SRC/cmd copied into /bin.
	programs []string
	// files are copied from the examples directory.
	files []file
}

// file is one file of an example copied into its tree.
type file struct {
	src  string // relative to the examples directory
	dst  string // inside the tree
	mode os.FileMode
}

// trees are the examples' root filesystems; each example's stack.yaml names
// its own as ../build/<name>.
func trees() []tree {
	return []tree{
		{name: "seed", busybox: true, files: []file{{src: "seed/mem.sh", dst: "mem.sh", mode: 0o755}}},
		{name: "web", programs: []string{"client", "server", "worker"}},
		{name: "crashloop", programs: []string{"crash"}},
		{name: "many", programs: []string{"idle"}},
	}
}

// skeleton are the mount points and scratch directories a container
// expects even when its rootfs holds nothing but one program.
var skeleton = []string{"bin", "dev", "etc", "proc", "sys", "tmp"}

// ldflags strip the symbol table and the build id: the id hashes the
// action graph, which would tie the binary to the build machine.
const ldflags = "-s -w -buildid="

func main() {
	out := flag.String("o", "examples/build", "directory the trees are built in")
	src := flag.String("src", "examples", "the examples directory (holds cmd/<prog> and the examples)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: mkrootfs [-o DIR] [-src DIR] [TREE...]\n\ntrees:")
		for _, t := range trees() {
			fmt.Fprintf(flag.CommandLine.Output(), " %s", t.name)
		}
		fmt.Fprintf(flag.CommandLine.Output(), "\n\nflags:\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	// Modes of created files must not depend on the caller's umask.
	syscall.Umask(0o022)
	if err := run(*src, *out, flag.Args()); err != nil {
		// busybox.ErrNotFound already says how to install busybox.
		fmt.Fprintf(os.Stderr, "mkrootfs: error: %v\n", err)
		os.Exit(1)
	}
}

func run(src, out string, names []string) error {
	chosen, err := choose(names)
	if err != nil {
		return err
	}
	if _, err := busybox.Path(); err != nil {
		if len(names) > 0 && slices.ContainsFunc(chosen, func(t tree) bool { return t.busybox }) {
			return err
		}
		chosen = slices.DeleteFunc(chosen, func(t tree) bool {
			if t.busybox {
				fmt.Fprintf(os.Stderr, "mkrootfs: skipping %s: %v\n", t.name, err)
			}
			return t.busybox
		})
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	bins, err := os.MkdirTemp(out, ".bin-")
	if err != nil {
		return fmt.Errorf("create build directory: %w", err)
	}
	defer os.RemoveAll(bins)
	if err := buildPrograms(src, bins, chosen); err != nil {
		return err
	}
	for _, t := range chosen {
		dir := filepath.Join(out, t.name)
		if err := assemble(t, src, bins, dir); err != nil {
			return fmt.Errorf("tree %s: %w", t.name, err)
		}
		sum, err := busybox.Digest(dir)
		if err != nil {
			return fmt.Errorf("tree %s: %w", t.name, err)
		}
		fmt.Printf("%s  sha256:%x\n", dir, sum)
	}
	return nil
}

// choose returns the trees named, or all of them.
func choose(names []string) ([]tree, error) {
	all := trees()
	if len(names) == 0 {
		return all, nil
	}
	var chosen []tree
	for _, n := range names {
		i := slices.IndexFunc(all, func(t tree) bool { return t.name == n })
		if i < 0 {
			return nil, fmt.Errorf("no tree named %q (run mkrootfs -h for the list)", n)
		}
		chosen = append(chosen, all[i])
	}
	return chosen, nil
}

// buildPrograms compiles every program the trees need into dir, in one
// invocation so that the go command builds them in parallel.
func buildPrograms(src, dir string, chosen []tree) error {
	var pkgs []string
	for _, t := range chosen {
		for _, p := range t.programs {
			pkg := "./" + filepath.Join("cmd", p)
			if !slices.Contains(pkgs, pkg) {
				pkgs = append(pkgs, pkg)
			}
		}
	}
	if len(pkgs) == 0 {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("build directory %s: %w", dir, err)
	}
	goTool := os.Getenv("GO")
	if goTool == "" {
		goTool = "go"
	}
	args := append([]string{"build", "-trimpath", "-buildvcs=false", "-ldflags=" + ldflags, "-o", abs + "/"}, pkgs...)
	cmd := exec.Command(goTool, args...)
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build %v: %w", pkgs, err)
	}
	return nil
}

// assemble lays out t at dir, replacing what was there.
func assemble(t tree, src, bins, dir string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+t.name+"-")
	if err != nil {
		return fmt.Errorf("create temporary tree: %w", err)
	}
	// Removes the temporary tree when any step fails; after the rename it
	// no longer exists and this does nothing.
	defer os.RemoveAll(tmp)
	if t.busybox {
		if err := busybox.Install(tmp); err != nil {
			return fmt.Errorf("install busybox: %w", err)
		}
	}
	for _, d := range skeleton {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return fmt.Errorf("create /%s: %w", d, err)
		}
	}
	// /tmp is writable by anyone, as on any Linux system; MkdirTemp made
	// the tree's root 0700, which no other uid could enter.
	if err := os.Chmod(filepath.Join(tmp, "tmp"), 0o777|os.ModeSticky); err != nil {
		return fmt.Errorf("chmod /tmp: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("chmod /: %w", err)
	}
	for _, p := range t.programs {
		if err := copyFile(filepath.Join(bins, p), filepath.Join(tmp, "bin", p), 0o755); err != nil {
			return fmt.Errorf("copy program %s: %w", p, err)
		}
	}
	for _, f := range t.files {
		if err := copyFile(filepath.Join(src, f.src), filepath.Join(tmp, f.dst), f.mode); err != nil {
			return fmt.Errorf("copy %s: %w", f.src, err)
		}
	}
	if err := busybox.Normalize(tmp); err != nil {
		return fmt.Errorf("normalize mtimes: %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove previous tree: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("move tree into place: %w", err)
	}
	return nil
}

// copyFile copies src to dst with exactly mode, whatever the umask or the
// source's mode.
func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("write %s: %w", dst, err)
	}
	if err := out.Chmod(mode); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
