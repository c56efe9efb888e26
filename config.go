package main

import (
	"os"
	"path/filepath"
)

// configPaths finds trainwrap's own JSON config for kong's resolver: the value of
// --config (or TRAINWRAP_CONFIG) when given, otherwise trainwrap.json in the working
// directory when it exists. Flags win over env, env over the file: kong applies
// resolvers last, only to flags still unset.
func configPaths(args []string) []string {
	for i, a := range args {
		if a == "--" {
			break
		}
		if a == "--config" && i+1 < len(args) {
			return []string{args[i+1]}
		}
		if v, ok := cutPrefix(a, "--config="); ok {
			return []string{v}
		}
	}
	if v := os.Getenv("TRAINWRAP_CONFIG"); v != "" {
		return []string{v}
	}
	if _, err := os.Stat("trainwrap.json"); err == nil {
		p, _ := filepath.Abs("trainwrap.json")
		return []string{p}
	}
	return nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return "", false
}
