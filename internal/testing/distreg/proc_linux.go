package distreg

import (
	"os/exec"
	"syscall"
)

// DieWithParent asks the kernel to kill cmd's process when the process that started it
// dies, so a test binary killed by `go test -timeout` leaves no registry or server behind.
// Call it before cmd.Start.
func DieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
