package manifest

import (
	"bufio"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// schemaFile is the repository's schema.json, seen from this package.
const schemaFile = "../schema.json"

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	f, err := os.Open(schemaFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("schema.json", doc); err != nil {
		return nil, err
	}
	return c.Compile("schema.json")
})

func schema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	sch, err := compiled()
	if err != nil {
		t.Fatalf("compile %s: %v", schemaFile, err)
	}
	return sch
}

// schemaAccepts validates a manifest's YAML against the schema the way an
// editor does: the YAML seen as JSON, its variables replaced (by nothing,
// as for the loader in the tests). YAML that does not parse is refused.
func schemaAccepts(t testing.TB, data []byte) (bool, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return false, err
	}
	var v any
	if len(doc.Content) > 0 {
		// The schema describes a manifest once its variables are
		// replaced, as Compose's does; a value whose interpolation
		// fails stays as written.
		(&decoder{}).interpolate(&doc, "", &expander{lookup: variables{}.lookup})
		d := &decoder{}
		v = asJSON(d, doc.Content[0])
		if d.exhausted {
			return false, errors.New("too many nodes once aliases are expanded")
		}
	}
	err := schema(t).Validate(v)
	return err == nil, err
}

// asJSON converts YAML nodes to the values JSON would hold, following
// aliases and merge keys the way the loader does.
func asJSON(d *decoder, n *yaml.Node) any {
	n = d.resolve(n)
	if n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		obj := map[string]any{}
		for _, p := range d.pairs(n, "") {
			obj[p.key.Value] = asJSON(d, p.value)
		}
		return obj
	case yaml.SequenceNode:
		arr := make([]any, 0, len(n.Content))
		for _, item := range n.Content {
			arr = append(arr, asJSON(d, item))
		}
		return arr
	}
	switch n.ShortTag() {
	case "!!null":
		return nil
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b
		}
	case "!!int":
		var i int64
		if n.Decode(&i) == nil {
			return json.Number(strconv.FormatInt(i, 10))
		}
		var u uint64
		if n.Decode(&u) == nil {
			return json.Number(strconv.FormatUint(u, 10))
		}
	case "!!float":
		var f float64
		// JSON has no NaN or infinity: an editor sees them as text.
		if n.Decode(&f) == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
		}
	}
	return n.Value
}

// semanticReason returns why a manifest's problem is beyond JSON Schema,
// from its first line "# semantic: REASON", or "" when the schema must
// refuse it too.
func semanticReason(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	reason, ok := strings.CutPrefix(line, "# semantic:")
	if !ok {
		return ""
	}
	return strings.TrimSpace(reason)
}

func TestSchemaAcceptsValidManifests(t *testing.T) {
	paths := manifests(t, "valid")
	// examples/ may hold no manifest yet; every one it holds must validate.
	err := filepath.WalkDir("../examples", func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && (strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			paths = append(paths, path)
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatalf("walk examples: %v", err)
	}
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := schemaAccepts(t, data); !ok {
			t.Errorf("%s: the schema refuses it: %v", path, err)
		}
	}
}

// TestSchemaAgreesOnInvalidManifests holds the schema and the loader
// together: a manifest the loader refuses is refused by the schema too,
// unless its first line says why the problem is beyond JSON Schema, and
// then the schema must accept it (so that the mark stays true).
func TestSchemaAgreesOnInvalidManifests(t *testing.T) {
	semantic := 0
	for _, path := range manifests(t, "invalid") {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Load(path); err == nil {
			t.Errorf("%s: the loader accepts it", path)
		}
		ok, err := schemaAccepts(t, data)
		switch reason := semanticReason(t, path); {
		case reason == "" && ok:
			t.Errorf("%s: the schema accepts a manifest the loader refuses; make the schema refuse it, or mark the file \"# semantic: why\"", path)
		case reason != "" && !ok:
			t.Errorf("%s is marked semantic (%s), but the schema refuses it too: %v", path, reason, err)
		case reason != "":
			semantic++
		}
	}
	t.Logf("%d invalid manifests are semantic only", semantic)
}

func TestSchemaSignalNames(t *testing.T) {
	data, err := os.ReadFile(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Defs map[string]struct {
			Properties map[string]struct {
				OneOf []struct {
					Enum []string `json:"enum"`
				} `json:"oneOf"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	got := s.Defs["container"].Properties["stop_signal"].OneOf[0].Enum
	if want := signalNames(); !slices.Equal(got, want) {
		t.Errorf("schema.json's stop_signal names = %v\nthe loader's = %v", got, want)
	}
}
