//go:build failpoints

package failpoint

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// TestInject_CrashActions runs the test binary as a child that hits an
// armed failpoint, and checks how the child ended.
func TestInject_CrashActions(t *testing.T) {
	if name := os.Getenv("FAILPOINT_CHILD"); name != "" {
		Inject(name)
		os.Exit(0) // not reached when the action fires
	}
	for _, tc := range []struct {
		action string
		check  func(*os.ProcessState) bool
	}{
		{"panic", func(s *os.ProcessState) bool { return s.ExitCode() == 2 }},
		{"exit", func(s *os.ProcessState) bool { return s.ExitCode() == 3 }},
		{"kill", func(s *os.ProcessState) bool {
			ws, ok := s.Sys().(syscall.WaitStatus)
			return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
		}},
	} {
		t.Run(tc.action, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestInject_CrashActions$")
			cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=pt", EnvSpec+"=pt="+tc.action)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("child did not fail: %v\n%s", err, out)
			}
			if !tc.check(ee.ProcessState) {
				t.Fatalf("child ended with %v\n%s", ee.ProcessState, out)
			}
			if !strings.Contains(string(out), "failpoint pt: "+tc.action) {
				t.Fatalf("no failpoint line in the child's output:\n%s", out)
			}
		})
	}
}
