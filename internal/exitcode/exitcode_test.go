package exitcode

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestOf(t *testing.T) {
	cause := errors.New("classify: no logs in run/logs")
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantMsg  string // "" for no message
		wantOK   bool
		wantText string
	}{
		{"code and message", New(2, cause), 2, cause.Error(), true, cause.Error()},
		{"code alone", New(71, nil), 71, "", true, "exit 71"},
		{"wrapped in context", fmt.Errorf("run: %w", New(3, cause)), 3, cause.Error(), true, "run: " + cause.Error()},
		{"no exit code", cause, 1, cause.Error(), false, cause.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, msg, ok := Of(tt.err)
			gotMsg := ""
			if msg != nil {
				gotMsg = msg.Error()
			}
			if code != tt.wantCode || gotMsg != tt.wantMsg || ok != tt.wantOK {
				t.Errorf("Of = %d %q %v, want %d %q %v", code, gotMsg, ok, tt.wantCode, tt.wantMsg, tt.wantOK)
			}
			if tt.err.Error() != tt.wantText {
				t.Errorf("Error() = %q, want %q", tt.err.Error(), tt.wantText)
			}
		})
	}
}

// The cause stays reachable through the exit code.
func TestUnwrap(t *testing.T) {
	err := New(1, fmt.Errorf("open x: %w", fs.ErrNotExist))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(%v, fs.ErrNotExist) = false", err)
	}
}
