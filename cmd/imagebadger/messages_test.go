package main

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/internal/testing/faultreg"
)

// TestNotFoundSuggestsTheTagsCommand: inspecting a tag its repository lacks
// says so and names the command that lists the tags there are; a repository
// that does not exist is said to, with no such suggestion (its tags cannot
// be listed either). Crane's listing of each repository is the judge.
func TestNotFoundSuggestsTheTagsCommand(t *testing.T) {
	reg := faultreg.Start(t).Host
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Push(img, reg+"/acme/app:1", crane.WithAuth(authn.Anonymous)); err != nil {
		t.Fatal(err)
	}
	if _, err := crane.ListTags(reg+"/acme/nothing", crane.WithAuth(authn.Anonymous)); err == nil {
		t.Fatal("crane lists acme/nothing, which the test needs missing")
	}
	for _, tc := range []struct{ ref, want string }{
		{reg + "/acme/app:nope", "repository " + reg + "/acme/app has no tag nope; `imagebadger tags " + reg + "/acme/app` lists its tags"},
		{reg + "/acme/nothing:1", "repository " + reg + "/acme/nothing does not exist"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), []string{"inspect", "--allow-private-registries", tc.ref}, noEnv, &out, &out)
		if !errors.Is(err, analysis.ErrNotFound) || message(err) != tc.want || exitCode(err) != 1 {
			t.Errorf("inspect %s: %v (exit %d)\nprints %q\nwant    %q", tc.ref, err, exitCode(err), message(err), tc.want)
		}
	}
}
