package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
)

// dataDirLockName is the file in a data directory that its node process
// holds locked while it runs.
const dataDirLockName = "LOCK"

// lockDataDir takes the data directory for this process, before anything
// in it is opened: a second `rdb serve` on the same directory (a unit
// started twice, a mistyped flag) would otherwise open and check a live
// database, and could move it aside as damaged if it read a page while
// the running node wrote it. The lock is etcd's file lock (an open file
// description lock on Linux), released when the file is closed or the
// process ends, however it ends. The file holds the owner's pid, for the
// message the next one gets. release releases the lock.
func lockDataDir(dir string) (release func() error, err error) {
	path := filepath.Join(dir, dataDirLockName)
	f, err := fileutil.TryLockFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, fileutil.ErrLocked) {
		owner := "another process"
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
				owner = fmt.Sprintf("process %d", pid)
			}
		}
		return nil, fmt.Errorf("data directory %s is in use by %s (it holds %s locked): a data directory serves one node at a time", dir, owner, path)
	}
	if err != nil {
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if err := f.Truncate(0); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock data directory: %w", err)
	}
	return f.Close, nil
}
