package main

import (
	"context"
	"strings"
	"testing"

	"rdb/rpc/rpcpb"
)

func TestParseBackupArgs(t *testing.T) {
	sqlite, sql := rpcpb.BackupFormat_BACKUP_FORMAT_SQLITE, rpcpb.BackupFormat_BACKUP_FORMAT_SQL
	tests := []struct {
		line    string
		format  rpcpb.BackupFormat
		file    string
		wantErr string
	}{
		{line: ".backup db.sqlite", format: sqlite, file: "db.sqlite"},
		{line: ".backup --sql dump.sql", format: sql, file: "dump.sql"},
		{line: ".backup dump.sql --sql", format: sql, file: "dump.sql"},
		{line: ".backup --sql --sqlite x", format: sqlite, file: "x"},
		{line: `.backup "my backup.db"`, format: sqlite, file: "my backup.db"},
		{line: ".backup --sql -- --odd", format: sql, file: "--odd"},
		{line: ".backup", wantErr: "usage: .backup [--sql] FILE"},
		{line: ".backup --sql", wantErr: "usage: .backup [--sql] FILE"},
		{line: ".backup a b", wantErr: "usage: .backup [--sql] FILE"},
		{line: `.backup ""`, wantErr: "usage: .backup [--sql] FILE"},
		{line: ".backup --csv x", wantErr: "unknown option --csv"},
	}
	for _, tt := range tests {
		args, err := splitArgs(strings.TrimPrefix(tt.line, "."))
		if err != nil {
			t.Fatalf("%s: split: %v", tt.line, err)
		}
		format, file, err := parseBackupArgs(args[1:])
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: error %v, want %q", tt.line, err, tt.wantErr)
			}
			continue
		}
		if err != nil || format != tt.format || file != tt.file {
			t.Errorf("%s: got %v %q %v, want %v %q", tt.line, format, file, err, tt.format, tt.file)
		}
	}
}

func TestParseRestoreArgs(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		file    string
		wantErr bool
	}{
		{args: []string{"db.sqlite"}, file: "db.sqlite"},
		{args: []string{"--", "--odd"}, file: "--odd"},
		{args: nil, wantErr: true},
		{args: []string{"a", "b"}, wantErr: true},
		{args: []string{""}, wantErr: true},
	} {
		file, err := parseRestoreArgs(tt.args)
		if (err != nil) != tt.wantErr || file != tt.file {
			t.Errorf("%q: got %q, %v", tt.args, file, err)
		}
		if err != nil && err.Error() != "usage: .restore FILE" {
			t.Errorf("%q: error %q", tt.args, err)
		}
	}
}

func TestBackupRestoreInHelpAndCompletion(t *testing.T) {
	var out strings.Builder
	s := &shell{out: &out}
	if err := s.dotHelp(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".backup [--sql] FILE", ".restore FILE"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf(".help lacks %q:\n%s", want, out.String())
		}
	}
	for _, tt := range []struct {
		line string
		want []string
	}{
		{".ba", []string{".backup ", ".bail "}},
		{".bac", []string{".backup "}},
		{".res", []string{".restore "}},
		{".re", []string{".read ", ".restore "}},
		{".backup ", []string{"--sql"}},
	} {
		_, got, _ := s.complete(tt.line, len(tt.line))
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("complete(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
	for _, name := range []string{"backup", "restore", "bac", "rest"} {
		if _, err := lookupDot(name); err != nil {
			t.Errorf("lookupDot(%q): %v", name, err)
		}
	}
	if _, err := lookupDot("re"); err == nil {
		t.Error(`lookupDot("re") is ambiguous (read, restore) but found a command`)
	}
}
