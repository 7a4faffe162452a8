// Command rdb is the rdb server and admin CLI.
//
//	rdb serve   run a node
//	rdb status  print a node's status as JSON
//
// It is the composition root: it turns flags into the configurations of
// db, cluster and rpc, builds them in that order, runs them, and shuts
// them down in reverse order on SIGINT or SIGTERM.
package main
