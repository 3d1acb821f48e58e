package cgroup

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// DeviceRule allows one kind of access to a set of device nodes. A cgroup
// with device rules denies every access to a device that no rule allows:
// opening a node for reading or writing, and creating one with mknod.
type DeviceRule struct {
	// Type is 'c' (character), 'b' (block) or 'a' (both).
	Type byte
	// Major and Minor select the devices; Any matches every number.
	Major, Minor int64
	// Access is a non-empty subset of "rwm": read, write, mknod.
	Access string
}

// Any is the wildcard device number of a DeviceRule.
const Any = -1

// String is the rule in the v1 devices controller's syntax, "c 1:3 rwm".
func (r DeviceRule) String() string {
	num := func(n int64) string {
		if n == Any {
			return "*"
		}
		return strconv.FormatInt(n, 10)
	}
	return fmt.Sprintf("%c %s:%s %s", r.Type, num(r.Major), num(r.Minor), r.Access)
}

func (r DeviceRule) validate() error {
	switch {
	case r.Type != 'c' && r.Type != 'b' && r.Type != 'a':
		return fmt.Errorf("cgroup: device rule %q: type must be c, b or a", r)
	case r.Major < Any || r.Minor < Any || r.Major > 0xffffffff || r.Minor > 0xffffffff:
		return fmt.Errorf("cgroup: device rule %q: device numbers must be 0..2^32-1 or Any", r)
	case r.Access == "" || strings.Trim(r.Access, "rwm") != "":
		return fmt.Errorf("cgroup: device rule %q: access must be a non-empty subset of rwm", r)
	}
	return nil
}

func validateDevices(rules []DeviceRule) error {
	for _, r := range rules {
		if err := r.validate(); err != nil {
			return err
		}
	}
	return nil
}

// setDevicesV1 replaces the cgroup's device list with rules: deny
// everything first, then allow each rule. The kernel checks a new allow
// entry against the parent's list, so a cgroup never gets more than its
// parent. An allow entry of type a is written as one c and one b entry:
// the kernel reads any "a" written to devices.allow as "allow everything",
// whatever numbers and access follow it.
func setDevicesV1(dir string, rules []DeviceRule) error {
	if err := writeFile(dir+"/devices.deny", "a"); err != nil {
		return err
	}
	// One open for all the rules, each its own write as the kernel wants.
	allow, err := openFile(dir+"/devices.allow", unix.O_WRONLY)
	if err != nil {
		return fmt.Errorf("cgroup: open %s/devices.allow: %w", dir, err)
	}
	defer allow.close()
	for _, r := range rules {
		entries := []DeviceRule{r}
		if r.Type == 'a' {
			c, b := r, r
			c.Type, b.Type = 'c', 'b'
			entries = []DeviceRule{c, b}
		}
		for _, e := range entries {
			if err := allow.write(e.String()); err != nil {
				return err
			}
		}
	}
	return nil
}

// The context of a BPF_PROG_TYPE_CGROUP_DEVICE program, struct
// bpf_cgroup_dev_ctx in linux/bpf.h: three u32, access_type holding the
// access in its high half and the device type in its low half.
const (
	devCtxAccessType = 0
	devCtxMajor      = 4
	devCtxMinor      = 8

	devTypeBlock = 1 // BPF_DEVCG_DEV_BLOCK
	devTypeChar  = 2 // BPF_DEVCG_DEV_CHAR

	devAccMknod = 1 // BPF_DEVCG_ACC_MKNOD
	devAccRead  = 2 // BPF_DEVCG_ACC_READ
	devAccWrite = 4 // BPF_DEVCG_ACC_WRITE
	devAccAll   = devAccMknod | devAccRead | devAccWrite
)

func (r DeviceRule) bpfAccess() int32 {
	var a int32
	for _, c := range r.Access {
		switch c {
		case 'r':
			a |= devAccRead
		case 'w':
			a |= devAccWrite
		case 'm':
			a |= devAccMknod
		}
	}
	return a
}

// deviceProgram compiles rules into a cgroup device program: it returns 1
// (allow) at the first rule that covers the access, else 0, which the
// kernel turns into EPERM. Registers: R2 the device type, R3 the access
// asked for, R4 the major, R5 the minor; R1 is scratch once they are loaded.
func deviceProgram(rules []DeviceRule) (asm.Instructions, error) {
	if err := validateDevices(rules); err != nil {
		return nil, err
	}
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, devCtxAccessType, asm.Word),
		asm.And.Imm32(asm.R2, 0xffff),
		asm.LoadMem(asm.R3, asm.R1, devCtxAccessType, asm.Word),
		asm.RSh.Imm32(asm.R3, 16),
		asm.LoadMem(asm.R4, asm.R1, devCtxMajor, asm.Word),
		asm.LoadMem(asm.R5, asm.R1, devCtxMinor, asm.Word),
	}
	for i, r := range rules {
		next := fmt.Sprintf("rule%d", i+1)
		if i == len(rules)-1 {
			next = "deny"
		}
		var body asm.Instructions
		switch r.Type {
		case 'c':
			body = append(body, asm.JNE.Imm(asm.R2, devTypeChar, next))
		case 'b':
			body = append(body, asm.JNE.Imm(asm.R2, devTypeBlock, next))
		}
		if acc := r.bpfAccess(); acc != devAccAll {
			// Every access bit asked for must be in the rule's: an open
			// for reading and writing needs both r and w.
			body = append(body,
				asm.Mov.Reg32(asm.R1, asm.R3),
				asm.And.Imm32(asm.R1, ^acc&devAccAll),
				asm.JNE.Imm(asm.R1, 0, next))
		}
		if r.Major != Any {
			body = append(body, asm.JNE.Imm(asm.R4, int32(uint32(r.Major)), next))
		}
		if r.Minor != Any {
			body = append(body, asm.JNE.Imm(asm.R5, int32(uint32(r.Minor)), next))
		}
		body = append(body, asm.Mov.Imm32(asm.R0, 1), asm.Return())
		if i > 0 {
			body[0] = body[0].WithSymbol(fmt.Sprintf("rule%d", i))
		}
		insns = append(insns, body...)
	}
	insns = append(insns,
		asm.Mov.Imm32(asm.R0, 0).WithSymbol("deny"),
		asm.Return())
	return insns, nil
}

// loadDeviceProgram compiles and loads rules into the kernel.
func loadDeviceProgram(rules []DeviceRule) (*ebpf.Program, error) {
	insns, err := deviceProgram(rules)
	if err != nil {
		return nil, err
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		Instructions: insns,
		// The license the kernel asks of every program; this one calls no
		// helper that needs GPL.
		License: "Apache-2.0",
	}, ebpf.ProgramOptions{})
	if err != nil {
		return nil, fmt.Errorf("cgroup: load the device program: %w", err)
	}
	return prog, nil
}

// devicePrograms are the device programs a driver loaded, one per rule
// list, each attached to every cgroup given that list: a program is
// read-only once loaded, and its load (the verifier, the JIT) was most of
// the cost of making a container's cgroup (some 0.4 of 0.6 ms here). They
// stay loaded for the driver's life, a descriptor each.
type devicePrograms struct {
	mu     sync.Mutex
	loaded map[string]*deviceProgramFD
}

type deviceProgramFD struct {
	prog *ebpf.Program
	id   ebpf.ProgramID
}

// get returns the program for rules, loading it the first time.
func (ps *devicePrograms) get(rules []DeviceRule) (*deviceProgramFD, error) {
	var key strings.Builder
	for _, r := range rules {
		key.WriteString(r.String())
		key.WriteByte('\n')
	}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.loaded[key.String()]; ok {
		return p, nil
	}
	prog, err := loadDeviceProgram(rules)
	if err != nil {
		return nil, err
	}
	info, err := prog.Info()
	if err != nil {
		prog.Close()
		return nil, fmt.Errorf("cgroup: the device program's info: %w", err)
	}
	id, ok := info.ID()
	if !ok {
		prog.Close()
		return nil, fmt.Errorf("cgroup: the kernel gives the device program no ID")
	}
	if ps.loaded == nil {
		ps.loaded = map[string]*deviceProgramFD{}
	}
	p := &deviceProgramFD{prog: prog, id: id}
	ps.loaded[key.String()] = p
	return p, nil
}

// setDevicesV2 attaches the program for rules to the cgroup at dir, then
// detaches the device programs attached there before, so that a second
// Set replaces the rules rather than adds to them. The new program goes in
// first: detaching first would leave a moment with no device control.
// Attached with BPF_PROG_ATTACH (not a BPF link), the program stays for the
// cgroup's life without a descriptor of ours holding it.
func setDevicesV2(dir string, progs *devicePrograms, rules []DeviceRule) error {
	p, err := progs.get(rules)
	if err != nil {
		return err
	}
	cg, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return fmt.Errorf("cgroup: open %s: %w", dir, cause(err))
	}
	defer cg.Close()
	fd := int(cg.Fd())
	before, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("cgroup: %s: list device programs: %w", dir, err)
	}
	// The same program twice on one cgroup is refused (EEXIST): a Set
	// with the rules already in force keeps it and drops the others.
	attached := slices.ContainsFunc(before.Programs, func(a link.AttachedProgram) bool { return a.ID == p.id })
	// ALLOW_MULTI: a program attached to an ancestor (by systemd, say)
	// keeps running too, and an access must pass every one of them.
	if !attached {
		if err := link.RawAttachProgram(link.RawAttachProgramOptions{
			Target: fd, Program: p.prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI,
		}); err != nil {
			return fmt.Errorf("cgroup: %s: attach the device program: %w", dir, err)
		}
	}
	var errs []error
	for _, a := range before.Programs {
		if a.ID == p.id {
			continue
		}
		old, err := ebpf.NewProgramFromID(a.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("cgroup: %s: open device program %d: %w", dir, a.ID, err))
			continue
		}
		if err := link.RawDetachProgram(link.RawDetachProgramOptions{
			Target: fd, Program: old, Attach: ebpf.AttachCGroupDevice,
		}); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("cgroup: %s: detach the previous device program %d: %w", dir, a.ID, err))
		}
		old.Close()
	}
	return errors.Join(errs...)
}
