package chaos

import (
	"context"
	"errors"
	"log/slog"
)

var (
	// ErrNeedsRoot means a scenario needs root (disk-full mounts tmpfs);
	// callers skip it.
	ErrNeedsRoot = errors.New("chaos: scenario needs root")
	// ErrNeedsFailpoints means a scenario needs an rdb built with the
	// failpoints tag (clock-offset) and none could be built.
	ErrNeedsFailpoints = errors.New("chaos: scenario needs a failpoints build of rdb")
)

// prepareScenario sets up what a scenario needs before the nodes start
// (tmpfs data directories for disk-full, lazyfs ones for power-cut). The
// returned release undoes it after the cluster stopped; keep says the
// run's directory is kept, so data living on a tmpfs is copied out first.
func prepareScenario(ctx context.Context, s Scenario, c *cluster, log *slog.Logger) (release func(keep bool), err error) {
	switch s {
	case DiskFull:
		return mountDataDirs(ctx, c, log)
	case PowerCut:
		return mountLazyDataDirs(c, log)
	}
	return func(bool) {}, nil
}
