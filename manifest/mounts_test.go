package manifest

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadMounts(t *testing.T) {
	path := writeStack(t, `volumes:
  data: {}
containers:
  web:
    rootfs: ./rootfs
    command: [x]
    mounts: ["~:/home", "~/.config/app:/config:ro", "./missing/yet:/a", "data:/data", "${SRC:-.}/b:/b"]
`, "")
	st, _, err := LoadWith(path, Options{Home: "/home/someone"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	want := []Mount{
		{Source: "/home/someone", Target: "/home"},
		{Source: "/home/someone/.config/app", Target: "/config", ReadOnly: true},
		{Source: filepath.Join(dir, "missing/yet"), Target: "/a"},
		{Volume: "data", Target: "/data"},
		{Source: filepath.Join(dir, "b"), Target: "/b"},
	}
	if got := st.Containers["web"].Mounts; !reflect.DeepEqual(got, want) {
		t.Errorf("mounts:\n got %+v\nwant %+v", got, want)
	}
	if !reflect.DeepEqual(st.Volumes, []string{"data"}) {
		t.Errorf("volumes = %q", st.Volumes)
	}

	// Without a home directory, ~ cannot be read.
	_, _, err = LoadWith(path, Options{})
	var me *Error
	if !errors.As(err, &me) || len(me.Problems) != 2 || !strings.Contains(me.Problems[0].Msg, "home directory is not known") {
		t.Errorf("LoadWith without a home = %v; want two problems about ~", err)
	}
}
