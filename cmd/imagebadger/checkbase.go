package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/imagebadger/imagebadger/analysis"
	"github.com/imagebadger/imagebadger/auth"
	"github.com/imagebadger/imagebadger/images"
	"github.com/imagebadger/imagebadger/store"
)

// Exit statuses of check-base, for CI pipelines (as regctl image
// check-base has them).
const (
	exitBaseMoved   = 1
	exitBaseUnknown = 2
)

// exitError gives an error the exit status its command documents for it;
// the error's message is printed as any other.
type exitError struct {
	code int
	err  error
}

// Error is the error's own text.
func (e exitError) Error() string { return e.err.Error() }

// Unwrap exposes the error, whose public message is what is printed.
func (e exitError) Unwrap() error { return e.err }

// ExitCode is the process's exit status for the error.
func (e exitError) ExitCode() int { return e.code }

// checkBaseCommand is check-base: the gate a CI pipeline runs to learn
// whether an image must be rebuilt because its base image has moved on.
func checkBaseCommand() command {
	var base, platform string
	return command{
		name:    "check-base",
		args:    "REFERENCE",
		summary: "is the image's base current? exit 0 when it is, 1 when it has moved, 2 when no base is known or on an error",
		output:  true, nargs: 1, registryFlags: true,
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&base, "base", "", "the base image, REPOSITORY:TAG (default: the one the image names in its "+analysis.AnnotationBaseName+" annotation)")
			fs.StringVar(&platform, "platform", "", "check this platform only, os/arch[/variant] (default: every platform of the image)")
		},
		run: func(ctx context.Context, inv invocation) error {
			return checkBase(ctx, inv.cfg, inv.args[0], base, platform, inv.json, inv.stdout)
		},
	}
}

// checkBase prints whether the image refText still contains its base as
// the base's tag has it now, and returns an error with check-base's exit
// status: exitBaseMoved when it does not, exitBaseUnknown when no base is
// known or something failed.
func checkBase(ctx context.Context, cfg *Config, refText, baseText, platform string, jsonOut bool, w io.Writer) error {
	c, err := baseCheck(ctx, cfg, refText, baseText, platform)
	if err != nil {
		return exitError{code: exitBaseUnknown, err: err}
	}
	if jsonOut {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		err = enc.Encode(c)
	} else {
		err = printBaseCheck(w, c)
	}
	if err != nil {
		return exitError{code: exitBaseUnknown, err: fmt.Errorf("check-base: write the answer: %w", err)}
	}
	switch c.Status {
	case analysis.BaseMoved:
		return exitError{code: exitBaseMoved, err: movedError(c)}
	case analysis.BaseUnknown:
		return exitError{code: exitBaseUnknown, err: unknownError(c)}
	}
	return nil
}

// baseCheck reads the image and each base it names through the service's
// one read path (images.Service.Read, refreshing) over a throw-away database
// in memory, as inspect does, and judges every platform image (or the one
// platform names).
func baseCheck(ctx context.Context, cfg *Config, refText, baseText, platform string) (analysis.BaseCheck, error) {
	ref, err := analysis.ParseReference(refText)
	if err != nil {
		return analysis.BaseCheck{}, err
	}
	var flagBase *analysis.Reference
	if baseText != "" {
		b, err := analysis.ParseReference(baseText)
		if err != nil {
			return analysis.BaseCheck{}, reword(err, "--base: ")
		}
		flagBase = &b
	}
	svc, st, closeAll, err := oneOffWithStore(ctx, cfg)
	if err != nil {
		return analysis.BaseCheck{}, err
	}
	defer closeAll()
	a, err := svc.Read(ctx, auth.Operator(), ref, images.ReadOptions{Refresh: true})
	if err != nil {
		return analysis.BaseCheck{}, err
	}
	rep := a.Report
	platforms := make([]*analysis.Platform, 0, len(rep.Platforms))
	for i := range rep.Platforms {
		platforms = append(platforms, &rep.Platforms[i])
	}
	if platform != "" {
		p, ok := rep.Select(platform)
		if !ok {
			return analysis.BaseCheck{}, analysis.Errorf(analysis.ErrInvalidRequest, nil, "%s has no %s image; it has %s", rep.Reference, platform, platformNames(rep))
		}
		platforms = []*analysis.Platform{p}
	}
	index, descriptors, err := indexAnnotations(ctx, st, rep)
	if err != nil {
		return analysis.BaseCheck{}, err
	}
	current := map[analysis.Reference]*analysis.Report{}
	checks := make([]analysis.PlatformBaseCheck, 0, len(platforms))
	for _, p := range platforms {
		base, ok, err := baseOf(p, flagBase, descriptors[p.Digest], index)
		if err != nil {
			return analysis.BaseCheck{}, err
		}
		if !ok {
			checks = append(checks, analysis.NoBase(p))
			continue
		}
		cur, read := current[base.Ref]
		if !read && base.Ref.Tag != "" {
			b, err := svc.Read(ctx, auth.Operator(), base.Ref, images.ReadOptions{Refresh: true})
			if err != nil {
				return analysis.BaseCheck{}, reword(err, "the base "+base.Ref.String()+": ")
			}
			cur = b.Report
			current[base.Ref] = cur
		}
		checks = append(checks, analysis.CheckPlatformBase(p, base, cur))
	}
	return analysis.NewBaseCheck(rep, checks), nil
}

// baseOf names the base of the platform image p, from the first source
// that names one: --base, then the image's annotations (the platform
// manifest's, those its index gives its descriptor, the index's own). The
// image's SLSA provenance, whose materials name the base it was built from
// (docs/API.md, Supply chain), is a further source; it belongs here, after
// the annotations.
func baseOf(p *analysis.Platform, flagBase *analysis.Reference, descriptor, index map[string]string) (analysis.Base, bool, error) {
	named, ok, err := analysis.BaseFromAnnotations(p.Annotations, descriptor, index)
	if flagBase != nil {
		builtOn := ""
		// The image's word on the digest it was built on holds for the
		// same tag of the same repository.
		if ok && named.Ref.Repository == flagBase.Repository && named.Ref.Tag == flagBase.Tag {
			builtOn = named.BuiltOn
		}
		return analysis.NewBase(*flagBase, builtOn, analysis.BaseFromFlag), true, nil
	}
	return named, ok, err
}

// indexAnnotations returns, for an index, its own annotations and those it
// gives each platform image's descriptor (by digest), as the read stored
// the index; nothing for a single-platform image.
func indexAnnotations(ctx context.Context, st *store.Store, rep *analysis.Report) (index map[string]string, descriptors map[string]map[string]string, err error) {
	if !analysis.IsIndex(rep.MediaType) {
		return nil, nil, nil
	}
	_, body, err := st.Manifest(ctx, rep.Digest)
	if err != nil {
		return nil, nil, fmt.Errorf("check-base: the index of %s: %w", rep.Reference, err)
	}
	index, entries, err := analysis.ParseIndex(body, "index "+rep.Reference)
	if err != nil {
		return nil, nil, err
	}
	descriptors = make(map[string]map[string]string, len(entries))
	for _, e := range entries {
		descriptors[e.Digest.String()] = e.Annotations
	}
	return index, descriptors, nil
}

// printBaseCheck writes a base check as a person reads it in a CI log: the
// image, its base, and per platform from which digest to which.
func printBaseCheck(w io.Writer, c analysis.BaseCheck) error {
	fmt.Fprintf(w, "image   %s\n", c.Image)
	fmt.Fprintf(w, "digest  %s\n", c.Digest)
	if c.Base != nil {
		fmt.Fprintf(w, "base    %s\n", *c.Base)
	}
	fmt.Fprintf(w, "status  %s\n", c.Status)
	for _, p := range c.Platforms {
		fmt.Fprintf(w, "\n%s  %s\n", p.Platform, p.Status)
		if p.Base != nil && c.Base == nil {
			fmt.Fprintf(w, "  base      %s\n", *p.Base)
		}
		if p.Source != "" {
			fmt.Fprintf(w, "  named by  %s\n", sourceWords(p.Source))
		}
		if p.BuiltOn != nil {
			fmt.Fprintf(w, "  built on  %s\n", *p.BuiltOn)
		}
		if p.Current != nil {
			fmt.Fprintf(w, "  now       %s\n", *p.Current)
		}
		fmt.Fprintf(w, "  %s\n", p.Reason)
	}
	return nil
}

// sourceWords says who named a base.
func sourceWords(source string) string {
	switch source {
	case analysis.BaseFromFlag:
		return "--base"
	case analysis.BaseFromAnnotation:
		return "the image's annotations"
	}
	return source
}

// movedError says, for the first platform whose base moved, from where to
// where.
func movedError(c analysis.BaseCheck) error {
	for _, p := range c.Platforms {
		if !p.Moved {
			continue
		}
		if p.BuiltOn != nil {
			return fmt.Errorf("the base of %s has moved (%s): %s was %s when it was built and is %s now; rebuild it",
				c.Image, p.Platform, *p.Base, *p.BuiltOn, *p.Current)
		}
		return fmt.Errorf("the base of %s has moved (%s): %s is %s now, and the image does not start with its layers; rebuild it",
			c.Image, p.Platform, *p.Base, *p.Current)
	}
	return fmt.Errorf("the base of %s has moved", c.Image)
}

// unknownError says why the first platform that could not be judged could
// not.
func unknownError(c analysis.BaseCheck) error {
	for _, p := range c.Platforms {
		switch {
		case p.Status != analysis.BaseUnknown:
		case p.Base == nil:
			return fmt.Errorf("no base is known for %s (%s): %s", c.Image, p.Platform, p.Reason)
		default:
			return fmt.Errorf("the base of %s cannot be judged (%s): %s", c.Image, p.Platform, p.Reason)
		}
	}
	return errors.New("the image has no platform image to check")
}

// reword puts prefix before the public message of err, so a person knows
// which of the images read it is about; its kind and chain stay.
func reword(err error, prefix string) error {
	var ae *analysis.Error
	if !errors.As(err, &ae) {
		return fmt.Errorf("%s%w", prefix, err)
	}
	return &analysis.Error{Kind: ae.Kind, Message: prefix + ae.Message, RetryAfter: ae.RetryAfter, Err: err}
}

// platformNames lists a report's platforms for a message.
func platformNames(rep *analysis.Report) string {
	names := make([]string, len(rep.Platforms))
	for i, p := range rep.Platforms {
		names[i] = p.Platform
	}
	return strings.Join(names, ", ")
}
