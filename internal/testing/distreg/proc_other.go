//go:build !linux

package distreg

import "os/exec"

// DieWithParent does nothing outside Linux, which alone has a parent-death signal;
// children are still stopped by Stop and by the callers' cleanups.
func DieWithParent(cmd *exec.Cmd) {}
