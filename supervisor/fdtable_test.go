package supervisor

import (
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestSpareExtraFilesGrowTheChildsTable(t *testing.T) {
	fd := spareDescriptor()
	if fd < 0 {
		t.Skip("the open files limit leaves no room for a spare descriptor")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	extra, spare := spareExtraFiles([]*os.File{r, w})
	if spare == nil {
		t.Fatal("spareExtraFiles made no spare descriptor")
	}
	defer spare.Close()
	if extra[0] != r || extra[1] != w {
		t.Fatalf("the given files moved: %v", extra[:2])
	}
	// busybox sh's own ls, reading the child's own tables.
	cmd := exec.Command("/bin/sh", "-c", `grep FDSize /proc/self/status; ls /proc/self/fd`)
	cmd.ExtraFiles = extra
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	lines := strings.Fields(string(out))
	if len(lines) < 2 || lines[0] != "FDSize:" {
		t.Fatalf("unexpected output:\n%s", out)
	}
	size, err := strconv.Atoi(lines[1])
	if err != nil || size <= fd {
		t.Errorf("the child's table holds %s descriptors, want more than %d", lines[1], fd)
	}
	for _, want := range []string{"3", "4", strconv.Itoa(fd)} {
		if !slices.Contains(lines[2:], want) {
			t.Errorf("descriptor %s is not open in the child: %v", want, lines[2:])
		}
	}
}

func TestCloseSpareDescriptor(t *testing.T) {
	fd := spareDescriptor()
	if fd < 0 {
		t.Skip("the open files limit leaves no room for a spare descriptor")
	}
	open := func() bool { _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); return err == nil }
	if open() {
		t.Fatalf("descriptor %d is already open in the test", fd)
	}
	// placeAt opens path and puts a copy of it at fd.
	placeAt := func(path string) {
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := unix.Dup3(int(f.Fd()), fd, unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
	}
	defer unix.Close(fd)

	// Anything but /dev/null there is not up -d's, and stays.
	placeAt(t.TempDir())
	closeSpareDescriptor()
	if !open() {
		t.Fatal("closeSpareDescriptor closed a descriptor that is not /dev/null")
	}
	placeAt(os.DevNull)
	closeSpareDescriptor()
	if open() {
		t.Error("closeSpareDescriptor left up -d's /dev/null open")
	}
}
