package rundir

import (
	"testing"
	"time"
)

func TestLogPrefixRoundTrip(t *testing.T) {
	local := time.FixedZone("UTC+5", 5*3600)
	tests := []struct {
		name    string
		at      time.Time
		attempt int
		text    string
		want    string
	}{
		{"plain", time.Date(2026, 11, 28, 23, 57, 10, 123_000_000, time.UTC), 2, "loss 0.5", "2026-11-28T23:57:10.123Z [2] loss 0.5"},
		{"local time is written in UTC", time.Date(2026, 11, 29, 4, 57, 10, 123_000_000, local), 2, "x", "2026-11-28T23:57:10.123Z [2] x"},
		{"whole second keeps its zeros", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 1, "x", "2026-01-02T03:04:05.000Z [1] x"},
		{"sub-millisecond is cut, not rounded", time.Date(2026, 1, 2, 3, 4, 5, 999_999_999, time.UTC), 1, "x", "2026-01-02T03:04:05.999Z [1] x"},
		{"attempt with many digits", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 12345, "x", "2026-01-02T03:04:05.000Z [12345] x"},
		{"empty line", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 3, "", "2026-01-02T03:04:05.000Z [3] "},
		{"text that looks like a prefix", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 4, "2026-01-02T03:04:05.000Z [9] inner", "2026-01-02T03:04:05.000Z [4] 2026-01-02T03:04:05.000Z [9] inner"},
		{"text starting with a space keeps it", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 1, "  indented", "2026-01-02T03:04:05.000Z [1]   indented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			line := append(AppendLogPrefix(nil, tt.at, tt.attempt), tt.text...)
			if string(line) != tt.want {
				t.Fatalf("written %q, want %q", line, tt.want)
			}
			at, attempt, text, ok := ParseLogLine(line)
			if !ok {
				t.Fatalf("ParseLogLine(%q): not recognised", line)
			}
			if want := tt.at.Truncate(time.Millisecond); !at.Equal(want) {
				t.Errorf("time %v, want %v", at, want)
			}
			if attempt != tt.attempt || string(text) != tt.text {
				t.Errorf("attempt %d text %q, want %d %q", attempt, text, tt.attempt, tt.text)
			}
		})
	}
}

// Lines without trainwrap's prefix come back whole: a user may classify any log.
func TestParseLogLineOddLines(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		ok      bool
		attempt int
		text    string
	}{
		{"no prefix", "Traceback (most recent call last):", false, 0, "Traceback (most recent call last):"},
		{"empty", "", false, 0, ""},
		{"timestamp only", "2026-11-28T23:57:10.123Z", false, 0, "2026-11-28T23:57:10.123Z"},
		{"timestamp and space", "2026-11-28T23:57:10.123Z ", false, 0, "2026-11-28T23:57:10.123Z "},
		{"no attempt digits", "2026-11-28T23:57:10.123Z [] x", false, 0, "2026-11-28T23:57:10.123Z [] x"},
		{"unclosed attempt", "2026-11-28T23:57:10.123Z [2 x", false, 0, "2026-11-28T23:57:10.123Z [2 x"},
		{"attempt not a number", "2026-11-28T23:57:10.123Z [ab] x", false, 0, "2026-11-28T23:57:10.123Z [ab] x"},
		{"negative attempt", "2026-11-28T23:57:10.123Z [-1] x", false, 0, "2026-11-28T23:57:10.123Z [-1] x"},
		{"seconds only timestamp", "2026-11-28T23:57:10Z [2] x", false, 0, "2026-11-28T23:57:10Z [2] x"},
		{"offset instead of Z", "2026-11-28T23:57:10.123+01:00 [2] x", false, 0, "2026-11-28T23:57:10.123+01:00 [2] x"},
		{"impossible date", "2026-13-40T23:57:10.123Z [2] x", false, 0, "2026-13-40T23:57:10.123Z [2] x"},
		{"space separator", "2026-11-28 23:57:10.123Z [2] x", false, 0, "2026-11-28 23:57:10.123Z [2] x"},
		{"no space after the attempt", "2026-11-28T23:57:10.123Z [2]x", true, 2, "x"},
		{"nothing after the attempt", "2026-11-28T23:57:10.123Z [2]", true, 2, ""},
		{"attempt zero", "2026-11-28T23:57:10.123Z [0] x", true, 0, "x"},
		{"carriage returns kept", "2026-11-28T23:57:10.123Z [7] 10%\r20%\r", true, 7, "10%\r20%\r"},
		{"brackets in the text", "2026-11-28T23:57:10.123Z [7] [rank3]: boom", true, 7, "[rank3]: boom"},
	}
	stamp := time.Date(2026, 11, 28, 23, 57, 10, 123_000_000, time.UTC)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, attempt, text, ok := ParseLogLine([]byte(tt.line))
			if ok != tt.ok || attempt != tt.attempt || string(text) != tt.text {
				t.Fatalf("ParseLogLine(%q) = %d %q %v, want %d %q %v", tt.line, attempt, text, ok, tt.attempt, tt.text, tt.ok)
			}
			if ok && !at.Equal(stamp) {
				t.Errorf("time %v, want %v", at, stamp)
			}
			if !ok && !at.IsZero() {
				t.Errorf("time %v for a line without a prefix, want zero", at)
			}
		})
	}
}

// One parser over many lines gives what ParseLogLine gives for each, whether the
// timestamp repeats the line before's or not, after bad lines too.
func TestLogLineParserAgreesWithParseLogLine(t *testing.T) {
	lines := []string{
		"2026-11-28T23:57:10.123Z [2] a",
		"2026-11-28T23:57:10.123Z [2] b",
		"2026-11-28T23:57:10.123Z [ab] same stamp, bad attempt",
		"2026-11-28T23:57:10.123Z [3] c",
		"2026-13-40T23:57:10.123Z [2] impossible date",
		"2026-13-40T23:57:10.123Z [2] impossible date again",
		"2026-11-28T23:57:10.124Z [3] d",
		"no prefix",
		"2026-11-28T23:57:10.124Z [3] e",
		"2026-11-28T23:57:10.123Z [4] an older stamp",
	}
	var p LogLineParser
	for range 2 {
		for _, l := range lines {
			wt, wa, wx, wok := ParseLogLine([]byte(l))
			gt, ga, gx, gok := p.Parse([]byte(l))
			if !gt.Equal(wt) || ga != wa || string(gx) != string(wx) || gok != wok {
				t.Errorf("Parse(%q) = %v %d %q %v, ParseLogLine %v %d %q %v", l, gt, ga, gx, gok, wt, wa, wx, wok)
			}
		}
	}
}
