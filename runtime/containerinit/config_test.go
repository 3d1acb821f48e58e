package containerinit

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// filler sets every field reachable from a value to one that is not zero
// and unlike any other field's (n counts up), so that a field the
// encoding leaves out, or two it swaps, come back different. Bools can
// only be true or false: the one numbered falseBool (in the order they
// are reached) is false, the others true, so that running once per bool
// catches two swapped bools too.
type filler struct {
	t         testing.TB
	n         int
	bools     int
	falseBool int
}

func (f *filler) fill(v reflect.Value, path string) {
	f.n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("%s-%d", path, f.n))
	case reflect.Bool:
		v.SetBool(f.bools != f.falseBool)
		f.bools++
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(f.n))
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(fmt.Sprintf("%s-%d", path, f.n)))
			return
		}
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range s.Len() {
			f.fill(s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem(), path)
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			field := v.Type().Field(i)
			if !field.IsExported() {
				f.t.Fatalf("%s.%s is unexported: the encoding cannot be checked for it", path, field.Name)
			}
			f.fill(v.Field(i), path+"."+field.Name)
		}
	default:
		f.t.Fatalf("%s is a %s, which this test does not know how to fill (nor config.go how to encode)", path, v.Kind())
	}
}

// filled returns a *T with every field filled (filler), the bool numbered
// falseBool false, and how many bools it has.
func filled[T any](t testing.TB, falseBool int) (*T, int) {
	var cfg T
	f := filler{t: t, falseBool: falseBool}
	f.fill(reflect.ValueOf(&cfg).Elem(), reflect.TypeFor[T]().Name())
	return &cfg, f.bools
}

// TestConfigRoundTrip fails when a field of Config or ExecConfig (or of
// what they hold) is added but not encoded, or encoded in another place
// than it is decoded from.
func TestConfigRoundTrip(t *testing.T) {
	roundTrip(t, EncodeConfig, decodeConfig)
	roundTrip(t, EncodeExecConfig, decodeExecConfig)
}

func roundTrip[T any](t *testing.T, encode func(*T) ([]byte, error), decode func([]byte, *T) error) {
	t.Helper()
	_, bools := filled[T](t, -1)
	for falseBool := -1; falseBool < bools; falseBool++ {
		want, _ := filled[T](t, falseBool)
		payload, err := encode(want)
		if err != nil {
			t.Fatalf("encode %T: %v", want, err)
		}
		got := new(T)
		if err := decode(payload, got); err != nil {
			t.Fatalf("decode %T: %v", want, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%T (bool %d false) after a round trip:\n got %+v\nwant %+v", want, falseBool, got, want)
		}
	}
	// The zero value too: nil pointers and empty lists.
	payload, err := encode(new(T))
	if err != nil {
		t.Fatalf("encode a zero %T: %v", new(T), err)
	}
	got := new(T)
	if err := decode(payload, got); err != nil {
		t.Fatalf("decode a zero %T: %v", got, err)
	}
	if !reflect.DeepEqual(got, new(T)) {
		t.Errorf("a zero %T after a round trip: %+v", got, got)
	}
}

// seedPayloads are encodings of both kinds, full and empty.
func seedPayloads(tb testing.TB) [][]byte {
	cfg, _ := filled[Config](tb, -1)
	ecfg, _ := filled[ExecConfig](tb, -1)
	var seeds [][]byte
	for _, enc := range []func() ([]byte, error){
		func() ([]byte, error) { return EncodeConfig(cfg) },
		func() ([]byte, error) { return EncodeExecConfig(ecfg) },
		func() ([]byte, error) { return EncodeConfig(&Config{}) },
		func() ([]byte, error) { return EncodeExecConfig(&ExecConfig{}) },
	} {
		p, err := enc()
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, p)
	}
	return seeds
}

// checkDecode decodes payload as both kinds: neither may panic, and a
// payload either decoder accepts must be exactly what the encoder makes of
// the result (the encoding has one form per value), which also means no
// payload is accepted as both kinds.
func checkDecode(t *testing.T, payload []byte) (accepted bool) {
	t.Helper()
	var cfg Config
	if err := decodeConfig(payload, &cfg); err == nil {
		accepted = true
		if again, err := EncodeConfig(&cfg); err != nil || !bytes.Equal(again, payload) {
			t.Errorf("decoded %x as %+v, which encodes to %x (%v)", payload, cfg, again, err)
		}
	}
	var ecfg ExecConfig
	if err := decodeExecConfig(payload, &ecfg); err == nil {
		if accepted {
			t.Errorf("decoded %x as both kinds", payload)
		}
		accepted = true
		if again, err := EncodeExecConfig(&ecfg); err != nil || !bytes.Equal(again, payload) {
			t.Errorf("decoded %x as %+v, which encodes to %x (%v)", payload, ecfg, again, err)
		}
	}
	return accepted
}

// TestDecodeRejects feeds the decoders every truncation of valid payloads,
// trailing bytes and single corrupted bytes: each is an error naming what
// is wrong, or (a corrupted string byte, say) a valid payload, and never a
// panic.
func TestDecodeRejects(t *testing.T) {
	for _, payload := range seedPayloads(t) {
		if !checkDecode(t, payload) {
			t.Fatalf("a payload of the encoder's was refused: %x", payload)
		}
		for n := range len(payload) {
			if checkDecode(t, payload[:n]) {
				t.Errorf("accepted %d of %d bytes", n, len(payload))
			}
		}
		if checkDecode(t, append(bytes.Clone(payload), 0)) {
			t.Errorf("accepted a trailing byte")
		}
		for i := range payload {
			for _, b := range []byte{0, 1, 2, 0x7f, 0x80, 0xff} {
				bad := bytes.Clone(payload)
				bad[i] = b
				checkDecode(t, bad)
			}
		}
	}
	good, err := EncodeConfig(&Config{Process: Process{Args: []string{"/bin/true"}}})
	if err != nil {
		t.Fatal(err)
	}
	var ecfg ExecConfig
	for _, c := range []struct {
		name    string
		payload []byte
		decode  func([]byte) error
		want    string
	}{
		{"empty", nil, func(b []byte) error { return decodeConfig(b, &Config{}) }, "header at offset 0: truncated"},
		{"version", append([]byte{configVersion + 1}, good[1:]...), func(b []byte) error { return decodeConfig(b, &Config{}) }, "version 2, want 1"},
		{"kind", good, func(b []byte) error { return decodeExecConfig(b, &ecfg) }, `kind 'C', want 'X'`},
		{"count", append(good[:2:2], 0xff, 0xff, 0xff, 0xff), func(b []byte) error { return decodeConfig(b, &Config{}) }, "Args at offset 2: 4294967295 elements cannot fit in the 0 bytes left"},
		{"bool", append(bytes.Clone(good[:len(good)-1]), 2), func(b []byte) error { return decodeConfig(b, &Config{}) }, "2 is not a boolean"},
	} {
		err := c.decode(c.payload)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.want)
		}
	}
}

// FuzzDecodeConfig: go test -run '^$' -fuzz FuzzDecodeConfig
// ./runtime/containerinit. Its seeds run with the other tests.
func FuzzDecodeConfig(f *testing.F) {
	for _, p := range seedPayloads(f) {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, payload []byte) { checkDecode(t, payload) })
}

func TestEncodeRefusesOutOfRange(t *testing.T) {
	for _, cfg := range []*Config{
		{Joins: []NsJoin{{Kind: "net", FD: -1}}},
		{Process: Process{ParentDeathSignal: -1}},
		{Placement: Placement{Tasks: []CgroupTasks{{FD: 1 << 31}}}},
	} {
		if _, err := EncodeConfig(cfg); err == nil {
			t.Errorf("encoded %+v", cfg)
		}
	}
}

// TestDecodeAllocations keeps decoding to one allocation per list and
// pointer it fills: strings and the seccomp instructions are views of the
// payload, never copies (every process of every container decodes one).
func TestDecodeAllocations(t *testing.T) {
	// Args, Env, Seccomp, Mounts, Joins, Tasks.
	decodeAllocs(t, EncodeConfig, decodeConfig, 6)
	// Args, Env, Seccomp, Tasks, Joins, TtySize.
	decodeAllocs(t, EncodeExecConfig, decodeExecConfig, 6)
}

func decodeAllocs[T any](t *testing.T, encode func(*T) ([]byte, error), decode func([]byte, *T) error, want float64) {
	t.Helper()
	cfg, _ := filled[T](t, -1)
	payload, err := encode(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n := testing.AllocsPerRun(10, func() {
		if err := decode(payload, new(T)); err != nil {
			t.Fatal(err)
		}
	})
	if n > want+1 { // the new(T) of the call itself
		t.Errorf("decoding a %T made %v allocations, want at most %v", cfg, n-1, want)
	}
}
