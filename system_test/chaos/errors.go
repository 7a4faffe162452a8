package chaos

import "errors"

var (
	// ErrNoNetns means network namespaces cannot be used on this machine;
	// the error wrapping it names what is missing.
	ErrNoNetns = errors.New("chaos: network namespaces unavailable")
	// ErrHashMismatch means two replicas at the same applied index have
	// different content hashes.
	ErrHashMismatch = errors.New("chaos: replica hash mismatch")
	// ErrUnknownScenario means a scenario name is not one of Scenarios.
	ErrUnknownScenario = errors.New("chaos: unknown scenario")
	// ErrPartitionUnsupported means a partition fault was asked for on
	// a cluster without network namespaces.
	ErrPartitionUnsupported = errors.New("chaos: partitions need network namespaces")
)
