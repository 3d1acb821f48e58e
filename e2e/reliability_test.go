package e2e

// Reliability: what hostile use found (races between commands, a full
// disk, closed outputs, limits the kernel cannot honour), each checked as
// a user meets it.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestE2EDownRacesUpClearing runs down while an up -d takes over the
// stack: from scratch (the lock taken, no state written yet), and over a
// run whose supervisor was killed (the state still names that dead
// supervisor while the new one clears it). Down used to wait for the lock
// without end there. The race is run many times, with down landing
// a little later each time, so that it falls in every phase of the up.
// Whatever the order, both commands end, neither says the stack is
// already running or that a context was canceled, and a last down leaves
// nothing.
func TestE2EDownRacesUpClearing(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: race
containers:
  web:
    rootfs: {{rootfs}}
    command: sleep 1000
    stop_timeout: 2s
  db:
    rootfs: {{rootfs}}
    command: sleep 1000
    stop_timeout: 2s
`)
	const rounds = 12
	for i := range rounds {
		overKilled := i%2 == 1
		if overKilled {
			e.MustRun("up", "-d")
			sup := e.supervisorPid("race")
			if err := syscall.Kill(sup, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			// Until it has died, it is a running stack's supervisor.
			e.WaitFor("the killed supervisor to end", func() bool { return !alive(sup) })
		}
		up := e.Start("up", "-d")
		time.Sleep(time.Duration(i) * 5 * time.Millisecond)
		down := e.Run("down")
		upEnd := up.Wait()
		if down.Code != 0 {
			t.Errorf("round %d: down: exit %d: %s", i, down.Code, down.Stderr)
		}
		for _, wrong := range []string{"already running", "context canceled", "\nEOF"} {
			if strings.Contains(upEnd.Stderr, wrong) {
				t.Errorf("round %d: up -d racing down says %q: exit %d:\n%s", i, wrong, upEnd.Code, upEnd.Stderr)
			}
		}
		t.Logf("round %d (over a killed supervisor: %v): up -d exit %d, down %v; up -d said: %s", i, overKilled, upEnd.Code, down.Took, upEnd.Stderr)
		e.DownLeavingNothing()
	}
}

// TestE2EPsWhileDown runs ps over and over while down stops the stack:
// containers end and their cgroups go while ps reads them, which must never
// make ps fail (it used to, with ENODEV, in a few percent of calls).
func TestE2EPsWhileDown(t *testing.T) {
	e := newEnv(t)
	var m strings.Builder
	m.WriteString("name: ending\ncontainers:\n")
	for i := range 8 {
		fmt.Fprintf(&m, "  c%d:\n    rootfs: {{rootfs}}\n    command: sleep 1000\n", i)
	}
	e.manifest(m.String())
	calls := 0
	for round := range 6 {
		e.MustRun("up", "-d")
		down := e.Start("down")
		for {
			select {
			case <-down.Done():
			default:
				r := e.Run("-p", "ending", "ps", "--format", "json")
				calls++
				if r.Code != 0 {
					t.Errorf("round %d: ps during down: exit %d: %s", round, r.Code, r.Stderr)
				}
				continue
			}
			break
		}
		if r := down.Wait(); r.Code != 0 {
			t.Fatalf("down: exit %d: %s", r.Code, r.Stderr)
		}
	}
	t.Logf("%d ps calls during 6 downs", calls)
	e.AssertNothingLeft()
}

// TestE2EFullStateDisk fills the state directory's file system while a
// stack runs: the lost log lines are said at once in the stream (and that
// they are written again once there is room), and a container killed
// meanwhile, whose end the state file cannot record, is not shown running
// by ps, which says the disk is full. The state directory is a small
// tmpfs in a mount namespace of the test's own, which every command of the
// test runs in: the host's mount table is every test's to compare.
func TestE2EFullStateDisk(t *testing.T) {
	e := newEnv(t)
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sleep", "1000")
	if err := holder.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	ns := fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid)
	e.WaitFor("the test's mount namespace", func() bool {
		own, err1 := os.Readlink("/proc/self/ns/mnt")
		its, err2 := os.Readlink(ns)
		return err1 == nil && err2 == nil && own != its
	})
	inNS := func(args ...string) ([]byte, error) {
		return exec.Command("nsenter", append([]string{"--mount=" + ns, "--"}, args...)...).CombinedOutput()
	}
	if out, err := inNS("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", e.StateDir); err != nil {
		t.Fatalf("mount the state tmpfs: %v\n%s", err, out)
	}
	wrapper := filepath.Join(t.TempDir(), "stack")
	script := fmt.Sprintf("#!/bin/sh\nexec nsenter --mount=%s --wd=\"$PWD\" -- %s \"$@\"\n", ns, e.Bin)
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	e.Bin = wrapper
	e.manifest(`
name: full
containers:
  talker:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "i=0; while :; do echo line $$i; i=$$((i+1)); sleep 0.05; done"]
  victim:
    rootfs: {{rootfs}}
    command: sleep 1000
`)
	up := e.Start("up")
	var victim int
	e.WaitFor("both containers to run", func() bool {
		ps := e.PS()
		victim = ps["victim"].Pid
		return ps["talker"].State == "running" && ps["victim"].State == "running"
	})
	fill := filepath.Join(e.StateDir, "fill")
	inNS("sh", "-c", "cat /dev/zero > "+fill) // ends with ENOSPC, as meant
	e.WaitFor("the stream to say the log lines are lost", func() bool {
		return strings.Contains(strings.Join(up.Lines(), "\n"), "talker * log file cannot be written")
	})
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var psErr string
	e.WaitFor("ps to show the killed container as not running", func() bool {
		r := e.Run("ps", "--format", "json")
		psErr = r.Stderr
		return r.Code == 0 && !strings.Contains(r.Stdout, `"pid": `+fmt.Sprint(victim))
	})
	if !strings.Contains(psErr, "is full") {
		t.Errorf("ps on a full disk does not say so; stderr:\n%s", psErr)
	}
	if out, err := inNS("rm", fill); err != nil {
		t.Fatalf("rm: %v\n%s", err, out)
	}
	e.WaitFor("the stream to say the log is written again", func() bool {
		return strings.Contains(strings.Join(up.Lines(), "\n"), "talker * log file written again")
	})
	if err := up.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	end := up.Wait()
	t.Logf("up's warnings:\n%s", end.Stderr)
	if !strings.Contains(end.Stderr, "no space left on device") {
		t.Errorf("up did not warn of the full disk on stderr")
	}
	if r := e.Run("logs", "talker"); !strings.Contains(r.Stdout, "lines were lost") {
		t.Errorf("the persisted log does not say where lines went missing:\n%s", r.Stdout)
	}
	e.DownLeavingNothing()
}

// TestE2EUpIntoClosedPipe runs `stack up | head -1`: once head has its line
// and leaves, up's output is closed. That stops the stack as a first
// SIGTERM would, gracefully (the containers get their stop signal and
// grace) and cleaned up, and up says why; it used to die of SIGPIPE,
// killing the containers and leaving their cgroups and state.
func TestE2EUpIntoClosedPipe(t *testing.T) {
	e := newEnv(t)
	e.manifest(`
name: piped
containers:
  talker:
    rootfs: {{rootfs}}
    command: ["sh", "-c", "trap 'echo got TERM; exit 0' TERM; while :; do echo tick; sleep 0.1; done"]
`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "sh", "-c", `"$STACK" up | head -1`)
	sh.Dir = e.Dir
	sh.Env = append(e.Environ(), "STACK="+e.Bin)
	var stdout, stderr strings.Builder
	sh.Stdout, sh.Stderr = &stdout, &stderr
	err := sh.Run()
	if ctx.Err() != nil {
		t.Fatalf("stack up | head -1 has not ended: %s", stderr.String())
	}
	if err != nil {
		t.Errorf("stack up | head -1: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "the output was closed: stopping the stack") {
		t.Errorf("up does not say why it stops:\n%s", stderr.String())
	}
	logs := e.MustRun("logs").Stdout
	if !strings.Contains(logs, "talker | got TERM") {
		t.Errorf("talker did not get its stop signal (no grace period):\n%s", logs)
	}
	if row := e.PS()["talker"]; row.State != "stopped" {
		t.Errorf("ps: talker is %s, want stopped", row.State)
	}
	// Stopped and cleaned up by up itself: only the state and logs, which
	// stay for ps and logs, are left for down.
	if left := e.LeftCgroups(); len(left) > 0 {
		t.Errorf("cgroups left after up stopped: %v", left)
	}
	e.DownLeavingNothing()
}

// TestE2ESupervisorOutgrowsALowFileLimit starts more containers than a
// low soft RLIMIT_NOFILE allows descriptors for (5 each): the supervisor
// runs with the soft limit raised to the hard one (the Go runtime does
// it, to one below), while the containers keep the limit stack was
// started with, as the README says.
func TestE2ESupervisorOutgrowsALowFileLimit(t *testing.T) {
	e := newEnv(t)
	var m strings.Builder
	m.WriteString("name: fds\ncontainers:\n")
	for i := range 30 {
		fmt.Fprintf(&m, "  c%02d:\n    rootfs: {{rootfs}}\n    command: [\"sh\", \"-c\", \"ulimit -n; exec sleep 1000\"]\n", i)
	}
	e.manifest(m.String())
	sh := exec.Command("sh", "-c", `ulimit -Sn 64 && exec "$STACK" up -d`)
	sh.Dir = e.Dir
	sh.Env = append(e.Environ(), "STACK="+e.Bin)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("up -d of 30 containers under a soft limit of 64 descriptors: %v\n%s", err, out)
	}
	limits := string(mustRead(t, fmt.Sprintf("/proc/%d/limits", e.supervisorPid("fds"))))
	var soft, hard uint64
	for _, l := range strings.Split(limits, "\n") {
		if rest, ok := strings.CutPrefix(l, "Max open files"); ok {
			fmt.Sscan(rest, &soft, &hard)
		}
	}
	if soft < hard-1 || hard == 0 {
		t.Errorf("the supervisor's open files limit is %d (hard %d), want the hard one", soft, hard)
	}
	// The containers' soft limit is the hard one, as a daemon's
	// containers get its limit, not the soft limit of the shell that
	// ran stack.
	e.WaitFor("every container to print the hard limit", func() bool {
		return strings.Count(e.MustRun("logs").Stdout, fmt.Sprintf(" | %d\n", hard)) == 30
	})
	e.DownLeavingNothing()
}

// TestE2EUnpackLimit starts a container from an archive that unpacks to
// more than STACK_UNPACK_LIMIT: up fails naming the container and the
// limit, and leaves nothing (no half-unpacked tree in the store); a malformed
// limit is a usage error.
func TestE2EUnpackLimit(t *testing.T) {
	e := newEnv(t)
	data := t.TempDir()
	e.ExtraEnv = append(e.ExtraEnv, "STACK_DATA_DIR="+data)
	archive := filepath.Join(e.Dir, "big.tar")
	if out, err := exec.Command("tar", "-C", e.rootfs, "-cf", archive, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	e.manifest(`
name: bomb
containers:
  big:
    rootfs: ./big.tar
    command: ["true"]
`)
	e.ExtraEnv = append(e.ExtraEnv, "STACK_UNPACK_LIMIT=64k")
	r := e.Run("up")
	if r.Code != 1 || !strings.Contains(r.Stderr, `container "big"`) || !strings.Contains(r.Stderr, "more than 64K") {
		t.Errorf("up past the unpack limit: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	t.Logf("up past the unpack limit says:\n%s", r.Stderr)
	if left, _ := os.ReadDir(filepath.Join(data, "images", "tmp")); len(left) != 0 {
		t.Errorf("images/tmp left with %v", left)
	}
	e.AssertNothingLeft()
	e.ExtraEnv = append(e.ExtraEnv, "STACK_UNPACK_LIMIT=lots")
	if r := e.Run("up"); r.Code != 2 || !strings.Contains(r.Stderr, "STACK_UNPACK_LIMIT") {
		t.Errorf("up with STACK_UNPACK_LIMIT=lots: exit %d, stderr:\n%s", r.Code, r.Stderr)
	}
	e.AssertNothingLeft()
}
