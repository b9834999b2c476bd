package images_test

import (
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func analysisRef(s string) (name.Reference, error) { return name.ParseReference(s) }

func writeIndex(r name.Reference, idx v1.ImageIndex) error { return remote.WriteIndex(r, idx) }
