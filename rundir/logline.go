package rundir

import (
	"bytes"
	"strconv"
	"time"
)

// LogTimeLayout is the timestamp that starts each line of logs/train.log: UTC, to the
// millisecond, so that the lines of one log sort by time as text.
const LogTimeLayout = "2006-01-02T15:04:05.000Z07:00"

// logTimeLen is the length of a LogTimeLayout timestamp in UTC.
const logTimeLen = len("2006-01-02T15:04:05.000Z")

// AppendLogPrefix appends what goes before each line of the job's output in
// logs/train.log, "<timestamp> [<attempt>] ", for a line read at t during attempt.
func AppendLogPrefix(dst []byte, t time.Time, attempt int) []byte {
	dst = t.UTC().AppendFormat(dst, LogTimeLayout)
	dst = append(dst, " ["...)
	dst = strconv.AppendInt(dst, int64(attempt), 10)
	return append(dst, "] "...)
}

// ParseLogLine splits a line of logs/train.log (without its newline) into the time it
// was read, the attempt that printed it and the job's own text. ok is false for a line
// without the prefix (a log another tool wrote, or a file the user passed); text is
// then the whole line. text aliases line.
func ParseLogLine(line []byte) (t time.Time, attempt int, text []byte, ok bool) {
	var p LogLineParser
	return p.Parse(line)
}

// LogLineParser is ParseLogLine for the lines of a log in order: a timestamp equal to
// the line before's is not parsed again. The lines of one read of the job's output
// share one timestamp, so a log read back parses few. The zero value is ready.
type LogLineParser struct {
	stamp [logTimeLen]byte // the last timestamp that parsed
	t     time.Time
	valid bool
}

// Parse is ParseLogLine(line).
func (p *LogLineParser) Parse(line []byte) (t time.Time, attempt int, text []byte, ok bool) {
	const ts = logTimeLen
	b := line
	if len(b) < ts+4 || b[4] != '-' || b[10] != 'T' || b[ts-1] != 'Z' || b[ts] != ' ' || b[ts+1] != '[' {
		return time.Time{}, 0, line, false
	}
	if p.valid && string(b[:ts]) == string(p.stamp[:]) {
		t = p.t
	} else {
		var err error
		t, err = time.Parse(LogTimeLayout, string(b[:ts]))
		if err != nil {
			return time.Time{}, 0, line, false
		}
		copy(p.stamp[:], b[:ts])
		p.t, p.valid = t, true
	}
	end := bytes.IndexByte(b[ts+2:], ']')
	if end <= 0 {
		return time.Time{}, 0, line, false
	}
	n, err := strconv.Atoi(string(b[ts+2 : ts+2+end]))
	if err != nil || n < 0 {
		return time.Time{}, 0, line, false
	}
	text = b[ts+2+end+1:]
	if len(text) > 0 && text[0] == ' ' {
		text = text[1:]
	}
	return t, n, text, true
}
