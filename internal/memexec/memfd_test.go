package memexec

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestSealedMemfdHoldsItsData: a memfd made from data in the heap
// (written) and from data in the binary's image (sent from the binary's
// file) holds exactly that data, sealed.
func TestSealedMemfdHoldsItsData(t *testing.T) {
	image := unsafe.String((*byte)(reflect.ValueOf(TestSealedMemfdHoldsItsData).UnsafePointer()), 64<<10)
	heap := strings.Repeat("memexec", 1<<16)
	for what, data := range map[string]string{"heap": heap, "image": image} {
		f, err := SealedMemfd("test-"+what, data)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		defer f.Close()
		got := make([]byte, len(data)+1)
		n, err := f.ReadAt(got, 0)
		got = got[:n]
		if err != io.EOF {
			t.Fatalf("%s: read the memfd: %v", what, err)
		}
		if string(got) != data {
			t.Errorf("%s: the memfd holds %d bytes that differ from the %d given", what, len(got), len(data))
		}
		if _, err := unix.Write(int(f.Fd()), []byte("x")); !errors.Is(err, unix.EPERM) {
			t.Errorf("%s: a write to the sealed memfd: %v, want EPERM", what, err)
		}
	}
}

// TestExecutableOffset: data in the binary's image (this test's code) is
// found at the offset of the binary's file that holds the same bytes, and
// sendExecutable copies them from there; data in the heap is not found.
func TestExecutableOffset(t *testing.T) {
	code := reflect.ValueOf(TestExecutableOffset).UnsafePointer()
	data := unsafe.String((*byte)(code), 256)
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	off, ok := executableOffset(int(exe.Fd()), data)
	if !ok {
		t.Fatalf("the test binary's code at %p is not found in its file", code)
	}
	got := make([]byte, len(data))
	if _, err := exe.ReadAt(got, off); err != nil {
		t.Fatal(err)
	}
	if string(got) != data {
		t.Errorf("the file at offset %#x does not hold the code at %p", off, code)
	}
	// What SealedMemfd does with it: the kernel copies those bytes.
	fd, err := unix.MemfdCreate("test", unix.MFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	memfd := os.NewFile(uintptr(fd), "test")
	defer memfd.Close()
	if err := sendExecutable(fd, int(exe.Fd()), off, len(data)); err != nil {
		t.Fatalf("send the code from the binary's file: %v", err)
	}
	if _, err := memfd.ReadAt(got, 0); err != nil || string(got) != data {
		t.Errorf("the memfd does not hold the code sent (%v)", err)
	}
	heap := make([]byte, 1<<20)
	if _, ok := executableOffset(int(exe.Fd()), unsafe.String(&heap[0], len(heap))); ok {
		t.Errorf("heap memory at %p is found in the binary's file", &heap[0])
	}
}

// TestStartTalksOverTwoPipes: the program runs from the memfd, reads on
// its descriptor 3 what the caller writes, writes on 4 what the caller
// reads, and gets what setup set; the caller's reads end once the program
// has (Start closed the program's ends here).
func TestStartTalksOverTwoPipes(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh to interpret the test's program")
	}
	memfd, err := SealedMemfd("test-command", "#!/bin/sh\nread line <&3\necho \"$line to 4 $WORD\" >&4\n")
	if err != nil {
		t.Fatal(err)
	}
	defer memfd.Close()
	cmd, requests, replies, err := Start(memfd, "test-command", func(cmd *exec.Cmd) { cmd.Env = []string{"WORD=set"} })
	if err != nil {
		t.Fatal(err)
	}
	defer replies.Close()
	io.WriteString(requests, "from 3\n")
	requests.Close()
	got, _ := io.ReadAll(replies)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the memfd's program: %v", err)
	}
	if want := "from 3 to 4 set\n"; string(got) != want {
		t.Errorf("the memfd's program wrote %q to descriptor 4, want %q", got, want)
	}
}
