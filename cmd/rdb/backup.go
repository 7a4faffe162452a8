package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/status"

	"rdb/command"
	"rdb/rpc/client"
	"rdb/rpc/rpcpb"
)

func newBackupCommand() *cobra.Command {
	var endpoint, out, format string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write a consistent backup of the database to a file",
		Long: `Write a consistent backup of the database to a file.

--format sqlite (the default) writes a SQLite database file that the
standard sqlite3 tool can open; --format sql writes SQL text.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var f rpcpb.BackupFormat
			switch format {
			case "sqlite":
				f = rpcpb.BackupFormat_BACKUP_FORMAT_SQLITE
			case "sql":
				f = rpcpb.BackupFormat_BACKUP_FORMAT_SQL
			default:
				return fmt.Errorf("--format must be sqlite or sql, not %q", format)
			}
			if out == "" {
				return errors.New("--out is required")
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			c, err := client.New(client.Config{Endpoints: []string{endpoint}, RequestTimeout: timeout})
			if err != nil {
				return err
			}
			defer c.Close()
			n, idx, err := c.BackupToFile(ctx, f, out)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "backup of %d bytes at raft index %d written to %s\n", n, idx, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "127.0.0.1:5001", "client address of a node")
	cmd.Flags().StringVar(&out, "out", "", "file to write (replaced atomically)")
	cmd.Flags().StringVar(&format, "format", "sqlite", "sqlite or sql")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "deadline for the whole backup")
	return cmd
}

func newRestoreCommand() *cobra.Command {
	var endpoint, in, format string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Replace the database on every node with a SQLite file or SQL text",
		Long: `Replace the database on every node with a SQLite file or SQL text.

The data goes through the raft log, so every node gets it, and the swap is
atomic: invalid or corrupt input is refused and the old data stays.
--format auto (the default) recognizes SQLite files by their header.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in == "" {
				return errors.New("--in is required")
			}
			f, err := os.Open(in)
			if err != nil {
				return err
			}
			defer f.Close()
			rf, err := restoreFormat(format, f)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			c, err := client.New(client.Config{Endpoints: []string{endpoint}, RequestTimeout: timeout})
			if err != nil {
				return err
			}
			defer c.Close()
			resp, err := c.Restore(ctx, rf, f)
			if err != nil {
				return fmt.Errorf("restore: %s", status.Convert(err).Message())
			}
			fmt.Fprintf(os.Stderr, "restored %d bytes at raft index %d\n", resp.GetBytes(), resp.GetRaftIndex())
			return nil
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "127.0.0.1:5001", "client address of a node")
	cmd.Flags().StringVar(&in, "in", "", "SQLite file or SQL text to load")
	cmd.Flags().StringVar(&format, "format", "auto", "auto, sqlite or sql")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Hour, "deadline for the whole restore")
	return cmd
}

// restoreFormat decides the format, sniffing the SQLite header for auto
// (client.DetectRestoreFormat), and leaves f at its start.
func restoreFormat(format string, f *os.File) (command.RestoreFormat, error) {
	switch format {
	case "sqlite":
		return command.RestoreFormat_RESTORE_FORMAT_SQLITE, nil
	case "sql":
		return command.RestoreFormat_RESTORE_FORMAT_SQL, nil
	case "auto":
	default:
		return 0, fmt.Errorf("--format must be auto, sqlite or sql, not %q", format)
	}
	return client.DetectRestoreFormat(f)
}
