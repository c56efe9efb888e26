package checkpoints

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"
)

// File names are bytes, and every byte but '/' and NUL may be in one. Manifests must
// keep them exactly: a name that comes back changed looks like a file that vanished
// from its checkpoint, and the checkpoint is then quarantined as corrupt.

// A JSON string holds only UTF-8: encoding/json turns other bytes into U+FFFD. A name
// that is not UTF-8 keeps a readable (lossy) copy in its usual field and its exact
// bytes, base64, in a companion field named with a _b64 suffix, which readers prefer.
// Valid UTF-8 names, nearly all of them, are written as they are.

// exactName is the _b64 companion of name: empty when name is valid UTF-8.
func exactName(name string) string {
	if utf8.ValidString(name) {
		return ""
	}
	return base64.StdEncoding.EncodeToString([]byte(name))
}

// restoreName sets *name from its _b64 companion when there is one.
func restoreName(name *string, b64, field string) error {
	if b64 == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("%s_b64: %w", field, err)
	}
	*name = string(b)
	return nil
}

// The alias types have the fields but not the methods, so marshalling them does not
// recurse.
type (
	manifestFileFields ManifestFile
	manifestFields     Manifest
)

// MarshalJSON writes the entry with a path_b64 field when the path is not UTF-8.
func (f ManifestFile) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		manifestFileFields
		PathB64 string `json:"path_b64,omitempty"`
	}{manifestFileFields(f), exactName(f.Path)})
}

// UnmarshalJSON reads an entry, taking the exact path from path_b64 when present.
func (f *ManifestFile) UnmarshalJSON(b []byte) error {
	var v struct {
		manifestFileFields
		PathB64 string `json:"path_b64"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = ManifestFile(v.manifestFileFields)
	return restoreName(&f.Path, v.PathB64, "path")
}

// MarshalJSON writes the sidecar with root_b64 and checkpoint_b64 fields when those
// names are not UTF-8.
func (m Manifest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		manifestFields
		RootB64       string `json:"root_b64,omitempty"`
		CheckpointB64 string `json:"checkpoint_b64,omitempty"`
	}{manifestFields(m), exactName(m.Root), exactName(m.Checkpoint)})
}

// UnmarshalJSON reads a sidecar, taking exact names from the _b64 fields when present.
func (m *Manifest) UnmarshalJSON(b []byte) error {
	var v struct {
		manifestFields
		RootB64       string `json:"root_b64"`
		CheckpointB64 string `json:"checkpoint_b64"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*m = Manifest(v.manifestFields)
	if err := restoreName(&m.Root, v.RootB64, "root"); err != nil {
		return err
	}
	return restoreName(&m.Checkpoint, v.CheckpointB64, "checkpoint")
}

// sumsEscaper writes a name in the escaped form of coreutils' md5sum and xxhsum 0.8.2:
// the line starts with '\', and backslash, newline and carriage return are written as
// \\, \n and \r.
var sumsEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`)

// formatSums renders files as an xxh64sum manifest, one "HASH  NAME" line each. Only
// a name with a newline or carriage return is escaped: a line cannot hold it
// otherwise. A name with a backslash but neither is written as it is, which every
// checker reads back the same (they unescape only lines that start with '\'), while
// the escaped form would be an unreadable line to xxhsum before 0.8.2 (Debian
// bookworm's xxhash is 0.8.1).
func formatSums(files []ManifestFile) []byte {
	var b bytes.Buffer
	for _, f := range files {
		if strings.ContainsAny(f.Path, "\n\r") {
			fmt.Fprintf(&b, "\\%s  %s\n", f.XXH64, sumsEscaper.Replace(f.Path))
			continue
		}
		fmt.Fprintf(&b, "%s  %s\n", f.XXH64, f.Path)
	}
	return b.Bytes()
}

// sumsLine is one line of an xxh64sum manifest.
type sumsLine struct {
	XXH64 string
	Path  string
}

// parseSums reads an xxh64sum manifest: "HASH  NAME" lines (the second separator may
// be '*', as md5sum's binary mode writes it), and the escaped form of names with a
// newline, a carriage return or a backslash, which a line starting with '\' marks. A
// line it cannot read is an error that names the line.
func parseSums(data []byte) ([]sumsLine, error) {
	var out []sumsLine
	for n, line := range bytes.Split(data, []byte("\n")) {
		if len(line) == 0 {
			if n == bytes.Count(data, []byte("\n")) {
				break // after the last newline
			}
			return nil, fmt.Errorf("manifest line %d: empty", n+1)
		}
		escaped := line[0] == '\\'
		if escaped {
			line = line[1:]
		}
		if len(line) < 16+2+1 || line[16] != ' ' || (line[17] != ' ' && line[17] != '*') || !isHex(line[:16]) {
			return nil, fmt.Errorf("manifest line %d: want 16 hex digits, two spaces and a file name: %q", n+1, line)
		}
		name := string(line[18:])
		if escaped {
			var err error
			if name, err = unescapeSumsName(name); err != nil {
				return nil, fmt.Errorf("manifest line %d: %w", n+1, err)
			}
		}
		out = append(out, sumsLine{XXH64: strings.ToLower(string(line[:16])), Path: name})
	}
	return out, nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// unescapeSumsName undoes sumsEscaper; like xxhsum it refuses any other backslash
// sequence and a trailing backslash, so a damaged line is an error, not another name.
func unescapeSumsName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			return "", fmt.Errorf("escaped file name %q ends with a backslash", s)
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf("escaped file name %q: unknown escape \\%c", s, s[i])
		}
	}
	return b.String(), nil
}
