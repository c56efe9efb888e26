package classify

import (
	"bytes"
	"strconv"
)

// normalize strips what launchers and terminals wrap around a job's line, so that
// evidence reads as the job printed it and the rank it came from is known: a \r-rewritten
// progress bar keeps its last state; ANSI colour codes go; then, repeatedly, `> `
// quoting, a leading timestamp, and rank prefixes (`[rank3]:`, `[default0]:`, `3: `,
// `[1,0]<stderr>:`). It returns the rank, or -1 when none is named.
func normalize(line []byte) (text []byte, rank int) {
	text, rank, _ = normalizeIndent(line)
	return text, rank
}

// normalizeIndent is normalize that also returns how far the text was indented once
// the prefixes were gone: a traceback's frames are indented, its last line is not.
func normalizeIndent(line []byte) (text []byte, rank, indent int) {
	rank = -1
	if i := bytes.LastIndexByte(bytes.TrimRight(line, "\r"), '\r'); i >= 0 {
		line = line[i+1:]
	}
	line = stripANSI(line)
	for {
		before := len(line)
		trimmed := bytes.TrimLeft(line, " \t")
		if len(trimmed) < len(line) {
			indent = len(line) - len(trimmed)
		}
		line = trimmed
		if bytes.HasPrefix(line, []byte("> ")) || bytes.Equal(line, []byte(">")) {
			line, indent = line[1:], 0
			continue
		}
		if l := stripTimestamp(line); len(l) != len(line) {
			line, indent = l, 0
		}
		if r, rest, ok := stripRank(line); ok {
			rank, line, indent = r, rest, 0
		}
		if rest, ok := stripRayPrefix(line); ok {
			line, indent = rest, 0
		}
		if len(line) == before {
			break
		}
	}
	return bytes.TrimRight(line, " \t\r"), rank, indent
}

// stripANSI removes CSI sequences (ESC [ ... final byte), copying only when there is one.
func stripANSI(b []byte) []byte {
	if bytes.IndexByte(b, 0x1b) < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '[' {
			j := i + 2
			for j < len(b) && (b[j] < 0x40 || b[j] > 0x7e) {
				j++
			}
			i = j
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// stripTimestamp removes a leading date-time ("2026-11-28T23:57:10.123Z",
// "2026-11-28 23:57:10,123", "[2026-11-28 23:57:10]") and what usually follows it.
func stripTimestamp(b []byte) []byte {
	s := b
	bracket := len(s) > 0 && s[0] == '['
	if bracket {
		s = s[1:]
	}
	if len(s) < 19 || !digits(s[0:4]) || s[4] != '-' || !digits(s[5:7]) || s[7] != '-' || !digits(s[8:10]) ||
		(s[10] != 'T' && s[10] != ' ') || !digits(s[11:13]) || s[13] != ':' || !digits(s[14:16]) || s[16] != ':' || !digits(s[17:19]) {
		return b
	}
	i := 19
	for i < len(s) && (s[i] == '.' || s[i] == ',' || (s[i] >= '0' && s[i] <= '9') || s[i] == 'Z' || s[i] == '+' || s[i] == ':') {
		i++
	}
	if bracket {
		if i >= len(s) || s[i] != ']' {
			return b
		}
		i++
	}
	for i < len(s) && (s[i] == ' ' || s[i] == '|' || s[i] == '-') {
		i++
	}
	return s[i:]
}

// stripRank removes one rank prefix and returns the rank.
func stripRank(b []byte) (int, []byte, bool) {
	switch {
	case bytes.HasPrefix(b, []byte("[rank")):
		// [rank3]: ...
		if n, i, ok := number(b, 5); ok && bytes.HasPrefix(b[i:], []byte("]:")) {
			return n, b[i+2:], true
		}
	case bytes.HasPrefix(b, []byte("[default")):
		// torchrun --tee: [default0]: ...
		if n, i, ok := number(b, 8); ok && bytes.HasPrefix(b[i:], []byte("]:")) {
			return n, b[i+2:], true
		}
	case len(b) > 0 && b[0] == '[':
		// mpirun --tag-output: [1,0]<stderr>: ...
		if _, i, ok := number(b, 1); ok && i < len(b) && b[i] == ',' {
			if n, j, ok := number(b, i+1); ok && j < len(b) && b[j] == ']' {
				rest := b[j+1:]
				for _, tag := range []string{"<stderr>:", "<stdout>:"} {
					if bytes.HasPrefix(rest, []byte(tag)) {
						return n, rest[len(tag):], true
					}
				}
			}
		}
	case len(b) > 0 && b[0] >= '0' && b[0] <= '9':
		// srun -l: "3: ..."
		if n, i, ok := number(b, 0); ok && i+1 < len(b) && b[i] == ':' && b[i+1] == ' ' && i <= 5 {
			return n, b[i+2:], true
		}
	}
	return -1, b, false
}

// stripRayPrefix removes the prefix Ray puts on a worker's output: "(pid=4242) " or
// "(RayTrainWorker pid=4242, ip=10.0.0.1) ".
func stripRayPrefix(b []byte) ([]byte, bool) {
	if len(b) == 0 || b[0] != '(' {
		return b, false
	}
	end := bytes.IndexByte(b, ')')
	if end < 0 || end > 120 {
		return b, false
	}
	p := bytes.Index(b[:end], []byte("pid="))
	if p < 0 || (p > 1 && b[p-1] != ' ') {
		return b, false
	}
	if _, _, ok := number(b, p+4); !ok {
		return b, false
	}
	rest := b[end+1:]
	if len(rest) > 0 && rest[0] != ' ' {
		return b, false
	}
	return rest, true
}

func number(b []byte, i int) (n, end int, ok bool) {
	j := i
	for j < len(b) && b[j] >= '0' && b[j] <= '9' {
		j++
	}
	if j == i || j-i > 6 {
		return 0, i, false
	}
	v, err := strconv.Atoi(string(b[i:j]))
	return v, j, err == nil
}

func digits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
