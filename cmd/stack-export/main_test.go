package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stack-containers/stack/internal/export"
)

func exchange(t *testing.T, requests string) (int, []export.Reply, string) {
	t.Helper()
	var replies, stdout, stderr bytes.Buffer
	code := serve(context.Background(), strings.NewReader(requests), &replies, &stdout, &stderr)
	var rs []export.Reply
	dec := json.NewDecoder(&replies)
	for dec.More() {
		var r export.Reply
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("replies %q: %v", replies.String(), err)
		}
		rs = append(rs, r)
	}
	return code, rs, stdout.String() + stderr.String()
}

// TestServeRefusesOptions: options that fail their check are the one
// reply, with exit status 2, and the program reads no stack.
func TestServeRefusesOptions(t *testing.T) {
	code, replies, out := exchange(t, `{"dir":"-","namespace":"Bad_NS"}`+"\n")
	if code != 2 || len(replies) != 1 || replies[0].Code != 2 || !strings.HasPrefix(replies[0].Error, `--namespace "Bad_NS": `) {
		t.Errorf("serve = %d with replies %+v, want 2 and the namespace's error", code, replies)
	}
	if out != "" {
		t.Errorf("serve printed %q; stack prints the error", out)
	}
}

// TestServeWithoutStack: a request that ends after the options (stack
// could not load the manifest) ends the program quietly.
func TestServeWithoutStack(t *testing.T) {
	code, replies, out := exchange(t, `{"dir":"-"}`+"\n")
	if code != 0 || len(replies) != 1 || replies[0] != (export.Reply{}) || out != "" {
		t.Errorf("serve = %d with replies %+v and output %q, want 0, the options' success and nothing printed", code, replies, out)
	}
}

// TestServeExports: a stack after the options is exported to stdout.
func TestServeExports(t *testing.T) {
	stack := `{"Name":"demo","Containers":{"web":{"Name":"web","Image":"registry.example/web:1","Command":["web"],"Restart":{"Policy":"always"}}}}`
	code, replies, out := exchange(t, `{"dir":"-"}`+"\n"+stack+"\n")
	if code != 0 || len(replies) != 2 || replies[1] != (export.Reply{}) {
		t.Fatalf("serve = %d with replies %+v, want 0 and two successes:\n%s", code, replies, out)
	}
	if !strings.Contains(out, "kind: Deployment") || !strings.Contains(out, "image: registry.example/web:1") {
		t.Errorf("the objects lack web's Deployment:\n%s", out)
	}
}
