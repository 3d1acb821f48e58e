package containerinit

import (
	"encoding/binary"
	"fmt"
	"math"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The configuration crosses the pipe (MsgConfig's payload) in an encoding
// of its own, written and read field by field, rather than as JSON: the
// init of every process of every container decodes one, and
// encoding/json's scanner and reflection were the largest part of the
// init program, with page faults and allocations of their own at each
// start. The parent and the init always come from the same build (the
// embedded program, or the running binary), so there is no compatibility
// to keep; the version and kind bytes make a mismatch, or a payload that
// is not a configuration at all, an error instead of garbage.
//
//	payload  = version kind fields      (nothing may follow)
//	version  = configVersion            (1 byte)
//	kind     = 'C' Config | 'X' ExecConfig
//	bool     = 1 byte, 0 or 1
//	u16, u32, u64: little endian
//	int      = u32, at most math.MaxInt32 (descriptors, signals)
//	string   = u32 length, bytes
//	list     = u32 count, elements
//	optional = bool (present), then the value when present
//
//	Config      = Process Hostname Lower Layer ReadOnly Mounts(list)
//	              Joins(list) NewNet NewUser Linked NewCgroup Placement
//	ExecConfig  = Process Placement Joins(list) Tty TtySize(optional)
//	Process     = Args(list of string) Env(list of string) Workdir User
//	              UID(u32) GID(u32) Caps(u64) Seccomp(optional)
//	              ParentDeathSignal(int)
//	Filter      = Flags(u32) Instructions(string)
//	Mount       = Source Target ReadOnly CopyUp
//	NsJoin      = Kind FD(int)
//	Placement   = Tasks(list) Wait
//	CgroupTasks = FD(int) Path
//	TtySize     = Row Col Xpixel Ypixel (u16 each)
//
// The decoder takes every string and the seccomp instructions as views of
// the payload, which nothing writes to once it is received, and makes
// each list once at its final length: a handful of allocations in all.
const configVersion = 1

const (
	kindConfig     byte = 'C'
	kindExecConfig byte = 'X'
)

// EncodeConfig is the MsgConfig payload of a container's init.
func EncodeConfig(cfg *Config) ([]byte, error) {
	e := newEncoder(kindConfig, &cfg.Process)
	e.process(&cfg.Process)
	e.str("Hostname", cfg.Hostname)
	e.str("Lower", cfg.Lower)
	e.str("Layer", cfg.Layer)
	e.boolean(cfg.ReadOnly)
	e.count("Mounts", len(cfg.Mounts))
	for _, m := range cfg.Mounts {
		e.str("Mounts.Source", m.Source)
		e.str("Mounts.Target", m.Target)
		e.boolean(m.ReadOnly)
		e.boolean(m.CopyUp)
	}
	e.joins(cfg.Joins)
	e.boolean(cfg.NewNet)
	e.boolean(cfg.NewUser)
	e.boolean(cfg.Linked)
	e.boolean(cfg.NewCgroup)
	e.placement(&cfg.Placement)
	return e.finish()
}

// EncodeExecConfig is the MsgConfig payload of a process entering a
// container.
func EncodeExecConfig(cfg *ExecConfig) ([]byte, error) {
	e := newEncoder(kindExecConfig, &cfg.Process)
	e.process(&cfg.Process)
	e.placement(&cfg.Placement)
	e.joins(cfg.Joins)
	e.boolean(cfg.Tty)
	e.boolean(cfg.TtySize != nil)
	if ws := cfg.TtySize; ws != nil {
		e.u16(ws.Row)
		e.u16(ws.Col)
		e.u16(ws.Xpixel)
		e.u16(ws.Ypixel)
	}
	return e.finish()
}

// decodeConfig reads EncodeConfig's payload into cfg, which is zero.
func decodeConfig(payload []byte, cfg *Config) error {
	d := decoder{b: payload}
	d.header(kindConfig)
	d.process(&cfg.Process)
	cfg.Hostname = d.str("Hostname")
	cfg.Lower = d.str("Lower")
	cfg.Layer = d.str("Layer")
	cfg.ReadOnly = d.boolean("ReadOnly")
	if n := d.count("Mounts", 10); n > 0 {
		cfg.Mounts = make([]Mount, n)
		for i := range cfg.Mounts {
			m := &cfg.Mounts[i]
			m.Source = d.str("Mounts.Source")
			m.Target = d.str("Mounts.Target")
			m.ReadOnly = d.boolean("Mounts.ReadOnly")
			m.CopyUp = d.boolean("Mounts.CopyUp")
		}
	}
	cfg.Joins = d.joins()
	cfg.NewNet = d.boolean("NewNet")
	cfg.NewUser = d.boolean("NewUser")
	cfg.Linked = d.boolean("Linked")
	cfg.NewCgroup = d.boolean("NewCgroup")
	d.placement(&cfg.Placement)
	return d.finish()
}

// decodeExecConfig reads EncodeExecConfig's payload into cfg, which is
// zero.
func decodeExecConfig(payload []byte, cfg *ExecConfig) error {
	d := decoder{b: payload}
	d.header(kindExecConfig)
	d.process(&cfg.Process)
	d.placement(&cfg.Placement)
	cfg.Joins = d.joins()
	cfg.Tty = d.boolean("Tty")
	if d.boolean("TtySize") {
		cfg.TtySize = &unix.Winsize{
			Row:    d.u16("TtySize.Row"),
			Col:    d.u16("TtySize.Col"),
			Xpixel: d.u16("TtySize.Xpixel"),
			Ypixel: d.u16("TtySize.Ypixel"),
		}
	}
	return d.finish()
}

// encoder appends a configuration's fields; the first value that cannot
// be encoded is its error.
type encoder struct {
	b   []byte
	err error
}

func newEncoder(kind byte, p *Process) *encoder {
	// Room for the usual configuration in one allocation: the seccomp
	// program is most of it.
	size := 512
	if p.Seccomp != nil {
		size += len(p.Seccomp.Instructions)
	}
	for _, s := range p.Args {
		size += len(s)
	}
	for _, s := range p.Env {
		size += len(s)
	}
	e := &encoder{b: make([]byte, 0, size)}
	e.b = append(e.b, configVersion, kind)
	return e
}

func (e *encoder) finish() ([]byte, error) {
	if e.err != nil {
		return nil, e.err
	}
	return e.b, nil
}

func (e *encoder) boolean(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}

func (e *encoder) u16(v uint16) { e.b = binary.LittleEndian.AppendUint16(e.b, v) }
func (e *encoder) u32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }
func (e *encoder) u64(v uint64) { e.b = binary.LittleEndian.AppendUint64(e.b, v) }

// int31 encodes a descriptor or a signal number.
func (e *encoder) int31(what string, v int) {
	if v < 0 || v > math.MaxInt32 {
		e.fail(what, fmt.Sprintf("%d is out of range", v))
		v = 0
	}
	e.u32(uint32(v))
}

func (e *encoder) count(what string, n int) {
	if uint64(n) > math.MaxUint32 {
		e.fail(what, fmt.Sprintf("%d elements or bytes are too many", n))
		n = 0
	}
	e.u32(uint32(n))
}

func (e *encoder) str(what, s string) {
	e.count(what, len(s))
	e.b = append(e.b, s...)
}

func (e *encoder) bytes(what string, b []byte) {
	e.count(what, len(b))
	e.b = append(e.b, b...)
}

func (e *encoder) strs(what string, l []string) {
	e.count(what, len(l))
	for _, s := range l {
		e.str(what, s)
	}
}

func (e *encoder) fail(what, problem string) {
	if e.err == nil {
		e.err = fmt.Errorf("%s: %s", what, problem)
	}
}

func (e *encoder) process(p *Process) {
	e.strs("Args", p.Args)
	e.strs("Env", p.Env)
	e.str("Workdir", p.Workdir)
	e.str("User", p.User)
	e.u32(p.UID)
	e.u32(p.GID)
	e.u64(p.Caps)
	e.boolean(p.Seccomp != nil)
	if f := p.Seccomp; f != nil {
		if uint64(f.Flags) > math.MaxUint32 {
			e.fail("Seccomp.Flags", fmt.Sprintf("%#x is out of range", f.Flags))
		}
		e.u32(uint32(f.Flags))
		e.bytes("Seccomp.Instructions", f.Instructions)
	}
	e.int31("ParentDeathSignal", int(p.ParentDeathSignal))
}

func (e *encoder) joins(joins []NsJoin) {
	e.count("Joins", len(joins))
	for _, j := range joins {
		e.str("Joins.Kind", j.Kind)
		e.int31("Joins.FD", j.FD)
	}
}

func (e *encoder) placement(pl *Placement) {
	e.count("Tasks", len(pl.Tasks))
	for _, t := range pl.Tasks {
		e.int31("Tasks.FD", t.FD)
		e.str("Tasks.Path", t.Path)
	}
	e.boolean(pl.Wait)
}

// decoder reads a configuration's fields from b. After the first error
// every read returns a zero value, and the error names the field it
// failed at and its offset: the caller checks once, at finish.
type decoder struct {
	b   []byte
	off int // of b[0] in the payload
	err error
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d bytes after the configuration, at offset %d", len(d.b), d.off)
	}
	return d.err
}

// fail records the first error: field what, at offset at, has problem.
func (d *decoder) fail(what string, at int, problem string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s at offset %d: %s", what, at, problem)
		d.b = nil
	}
}

// take consumes n bytes, or fails with what when fewer are left.
func (d *decoder) take(what string, n uint64) []byte {
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what, d.off, fmt.Sprintf("truncated: %d bytes wanted, %d left", n, len(d.b)))
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	d.off += int(n)
	return v
}

func (d *decoder) header(kind byte) {
	b := d.take("header", 2)
	switch {
	case b == nil:
	case b[0] != configVersion:
		d.fail("header", 0, fmt.Sprintf("version %d, want %d", b[0], configVersion))
	case b[1] != kind:
		d.fail("header", 1, fmt.Sprintf("a configuration of kind %q, want %q", b[1], kind))
	}
}

func (d *decoder) boolean(what string) bool {
	b := d.take(what, 1)
	if b == nil {
		return false
	}
	if b[0] > 1 {
		d.fail(what, d.off-1, fmt.Sprintf("%d is not a boolean", b[0]))
		return false
	}
	return b[0] == 1
}

func (d *decoder) u16(what string) uint16 {
	if b := d.take(what, 2); b != nil {
		return binary.LittleEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32(what string) uint32 {
	if b := d.take(what, 4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) u64(what string) uint64 {
	if b := d.take(what, 8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

// int31 reads a descriptor or a signal number.
func (d *decoder) int31(what string) int {
	v := d.u32(what)
	if v > math.MaxInt32 {
		d.fail(what, d.off-4, fmt.Sprintf("%d is out of range", v))
		return 0
	}
	return int(v)
}

// count reads a list's length, each of whose elements takes at least min
// bytes: a count the rest of the payload cannot hold fails here, before
// anything is allocated for it.
func (d *decoder) count(what string, min uint64) int {
	n := d.u32(what)
	if d.err == nil && uint64(n)*min > uint64(len(d.b)) {
		d.fail(what, d.off-4, fmt.Sprintf("%d elements cannot fit in the %d bytes left", n, len(d.b)))
		return 0
	}
	return int(n)
}

// bytes reads a length and that many bytes, as a view of the payload.
func (d *decoder) bytes(what string) []byte {
	n := d.u32(what)
	if n == 0 {
		return nil
	}
	return d.take(what, uint64(n))
}

// str reads a string, as a view of the payload (see the top of this
// file).
func (d *decoder) str(what string) string {
	b := d.bytes(what)
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

func (d *decoder) strs(what string) []string {
	n := d.count(what, 4)
	if n == 0 {
		return nil
	}
	l := make([]string, n)
	for i := range l {
		l[i] = d.str(what)
	}
	return l
}

func (d *decoder) process(p *Process) {
	p.Args = d.strs("Args")
	p.Env = d.strs("Env")
	p.Workdir = d.str("Workdir")
	p.User = d.str("User")
	p.UID = d.u32("UID")
	p.GID = d.u32("GID")
	p.Caps = d.u64("Caps")
	if d.boolean("Seccomp") {
		p.Seccomp = &Filter{
			Flags:        uint(d.u32("Seccomp.Flags")),
			Instructions: d.bytes("Seccomp.Instructions"),
		}
	}
	p.ParentDeathSignal = syscall.Signal(d.int31("ParentDeathSignal"))
}

func (d *decoder) joins() []NsJoin {
	n := d.count("Joins", 8)
	if n == 0 {
		return nil
	}
	joins := make([]NsJoin, n)
	for i := range joins {
		joins[i].Kind = d.str("Joins.Kind")
		joins[i].FD = d.int31("Joins.FD")
	}
	return joins
}

func (d *decoder) placement(pl *Placement) {
	if n := d.count("Tasks", 8); n > 0 {
		pl.Tasks = make([]CgroupTasks, n)
		for i := range pl.Tasks {
			pl.Tasks[i].FD = d.int31("Tasks.FD")
			pl.Tasks[i].Path = d.str("Tasks.Path")
		}
	}
	pl.Wait = d.boolean("Wait")
}
