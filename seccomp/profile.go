package seccomp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Profile is a checked seccomp profile, not yet resolved for a container.
type Profile struct {
	// json is the profile's text; nil means Docker's default profile.
	json []byte
	// unconfined means no filter at all.
	unconfined bool
}

// Default is Docker's default profile.
func Default() *Profile { return &Profile{} }

// Unconfined is no profile: Compile returns no program.
func Unconfined() *Profile { return &Profile{unconfined: true} }

// Parse reads a profile in Docker's JSON format. Unknown fields are errors,
// as a misspelt field would otherwise be silently ignored.
func Parse(data []byte) (*Profile, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p profiles.Seccomp
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("decode the seccomp profile: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("decode the seccomp profile: data after the profile's object")
	}
	if err := check(&p); err != nil {
		return nil, err
	}
	return &Profile{json: bytes.Clone(data)}, nil
}

// check refuses what Compile could not turn into a filter.
func check(p *profiles.Seccomp) error {
	if p.DefaultAction == "" {
		return fmt.Errorf("seccomp profile: defaultAction is missing")
	}
	if _, err := action(p.DefaultAction, p.DefaultErrnoRet); err != nil {
		return fmt.Errorf("seccomp profile: defaultAction: %w", err)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return fmt.Errorf("seccomp profile: both architectures and archMap are given; use one")
	}
	if p.ListenerPath != "" || p.ListenerMetadata != "" {
		return fmt.Errorf("seccomp profile: listenerPath: user notification is not supported")
	}
	for _, f := range p.Flags {
		if _, ok := filterFlags[f]; !ok {
			return fmt.Errorf("seccomp profile: flags: %q is not supported (known: SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW)", f)
		}
	}
	for i, s := range p.Syscalls {
		where := fmt.Sprintf("seccomp profile: syscalls[%d]", i)
		if s == nil {
			return fmt.Errorf("%s: null rule", where)
		}
		if s.Name != "" && len(s.Names) > 0 {
			return fmt.Errorf("%s: both name and names are given; use one", where)
		}
		if s.Name == "" && len(s.Names) == 0 {
			return fmt.Errorf("%s: no syscall names", where)
		}
		if _, err := action(s.Action, s.ErrnoRet); err != nil {
			return fmt.Errorf("%s: action: %w", where, err)
		}
		for j, a := range s.Args {
			if a.Index > 5 {
				return fmt.Errorf("%s.args[%d]: index %d: a syscall has 6 arguments (0..5)", where, j, a.Index)
			}
			if !slices.Contains(operators, a.Op) {
				return fmt.Errorf("%s.args[%d]: op %q is not one of %v", where, j, a.Op, operators)
			}
		}
	}
	return nil
}

var operators = []specs.LinuxSeccompOperator{
	specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
	specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual,
}

// resolve applies the profile's conditions for a container with the given
// capabilities (names such as "CAP_SYS_ADMIN") on this host, the way
// Docker does. Each call decodes the profile afresh: resolution changes
// the profile it works on.
func (p *Profile) resolve(caps []string) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	var (
		out *specs.LinuxSeccomp
		err error
	)
	if p.json == nil {
		out, err = profiles.GetDefaultProfile(rs)
	} else {
		out, err = profiles.LoadProfile(string(p.json), rs)
	}
	if err != nil {
		return nil, fmt.Errorf("seccomp profile: %w", err)
	}
	if out == nil {
		return nil, fmt.Errorf("seccomp profile: no default action and no rules")
	}
	return out, nil
}

// MarshalJSON writes the profile for a state file: "default",
// "unconfined", or the profile's own JSON, so that a process started in
// the container later gets the very profile its PID 1 got, whatever
// became of the file since.
func (p *Profile) MarshalJSON() ([]byte, error) {
	switch {
	case p.unconfined:
		return json.Marshal("unconfined")
	case p.json == nil:
		return json.Marshal("default")
	}
	return p.json, nil
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (p *Profile) UnmarshalJSON(data []byte) error {
	var keyword string
	if err := json.Unmarshal(data, &keyword); err == nil {
		switch keyword {
		case "default":
			*p = Profile{}
		case "unconfined":
			*p = Profile{unconfined: true}
		default:
			return fmt.Errorf("seccomp profile: %q is neither default nor unconfined", keyword)
		}
		return nil
	}
	parsed, err := Parse(data)
	if err != nil {
		return err
	}
	*p = *parsed
	return nil
}
