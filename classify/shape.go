package classify

import (
	"bytes"
	"time"
)

// shapeOK applies r's shape and needs to a line that contains one of r's literals.
func shapeOK(r *rule, text []byte) bool {
	if r.needs != "" && !bytes.Contains(text, []byte(r.needs)) {
		return false
	}
	if r.shape == anywhere || r.shape == shapeExcType {
		// shapeExcType is weighed with the other type names of the line (excTypeRule).
		return r.shape == anywhere
	}
	for _, l := range r.literals {
		lit := []byte(l)
		for off := 0; off <= len(text); {
			i := bytes.Index(text[off:], lit)
			if i < 0 {
				break
			}
			i += off
			if shapeAt(r.shape, text, i, i+len(lit)) {
				return true
			}
			off = i + 1
		}
	}
	return false
}

func shapeAt(s shape, text []byte, i, j int) bool {
	before, after := text[:i], text[j:]
	switch s {
	case shapeShellJob:
		// After the text: the end, spaces before the command, or "(core dumped)".
		if len(after) > 0 && after[0] != ' ' && after[0] != '\t' && after[0] != '(' {
			return false
		}
		b := bytes.TrimRight(before, " \t")
		if len(b) == 0 {
			return true
		}
		// An interactive shell's report runs on from the progress bar the job left
		// without a newline: "... [02:13<02:46, 3.34it/s]Killed".
		if bytes.HasSuffix(before, []byte("it/s]")) || bytes.HasSuffix(before, []byte("s/it]")) {
			return true
		}
		// A pid ("line 1:  4321 Killed"), or srun's "task 0: Killed".
		b = bytes.TrimSuffix(b, []byte(":"))
		return len(b) > 0 && b[len(b)-1] >= '0' && b[len(b)-1] <= '9' && len(b) < len(before)
	case shapeWord:
		return (len(before) == 0 || !wordByte(before[len(before)-1])) && (len(after) == 0 || !wordByte(after[0]))
	case shapeAfterComma:
		return len(after) == 0 || after[0] == ',' || after[0] == ' ' || after[0] == '('
	case shapeLossValue:
		// The value ends: "nan" not followed by a lower-case letter ("nanometre"); Keras
		// runs its next line on ("loss: nanEpoch 2/10").
		if len(after) > 0 && after[0] >= 'a' && after[0] <= 'z' {
			return false
		}
		name := bytes.TrimRight(before, "'\" ")
		k := len(name)
		for k > 0 && (wordByte(name[k-1]) || name[k-1] == '/' || name[k-1] == '.' || name[k-1] == '-') {
			k--
		}
		// "best_loss" and its kind start at nan or inf before the first evaluation; a
		// loss scale is not a loss.
		metric := bytes.ToLower(name[k:])
		return bytes.Contains(metric, []byte("loss")) && !bytes.Contains(metric, []byte("best")) && !bytes.Contains(metric, []byte("min_")) && !bytes.Contains(metric, []byte("scale"))
	case shapeNCCLReturn:
		// After the code: the end, errno's text ("-> 2 (Operation now in progress)")
		// or the thread ("-> 2 [Async thread]").
		if len(after) > 0 && !(len(after) > 1 && after[0] == ' ' && (after[1] == '(' || after[1] == '[')) {
			return false
		}
		// Before the arrow: a source file and a line number, "misc/socket.cc:564".
		k := len(before)
		for k > 0 && before[k-1] >= '0' && before[k-1] <= '9' {
			k--
		}
		if k == len(before) || k == 0 || before[k-1] != ':' {
			return false
		}
		file := before[:k-1]
		file = file[bytes.LastIndexByte(file, ' ')+1:]
		dot := bytes.LastIndexByte(file, '.')
		if dot <= 0 {
			return false
		}
		switch string(file[dot+1:]) {
		case "cc", "c", "cpp", "h", "cu":
			return true
		}
		return false
	case shapeFaultTimeout:
		// "Timeout (0:30:00)!" at the start of the line.
		if len(before) != 0 {
			return false
		}
		k := 0
		for k < len(after) && (after[k] >= '0' && after[k] <= '9' || after[k] == ':') {
			k++
		}
		return k >= 5 && bytes.HasPrefix(after[k:], []byte(")!"))
	}
	return true
}

func wordByte(b byte) bool {
	return b == '_' || b >= '0' && b <= '9' || b|0x20 >= 'a' && b|0x20 <= 'z'
}

// excTypeName returns the dotted name that starts a line shaped like a Python
// exception's last line ("torch.OutOfMemoryError: ...", "KeyboardInterrupt"), or nil.
// strict asks for a name that ends in Error, Exception, Interrupt or Exit, as lines
// outside a traceback must.
func excTypeName(text []byte, strict bool) []byte {
	i := 0
	for i < len(text) && (text[i] == '_' || text[i] == '.' || (text[i]|0x20 >= 'a' && text[i]|0x20 <= 'z') || (i > 0 && text[i] >= '0' && text[i] <= '9')) {
		i++
	}
	name := text[:i]
	if len(name) == 0 || name[0] == '.' || name[len(name)-1] == '.' {
		return nil
	}
	if i < len(text) && text[i] == '(' {
		// Ray's RayTaskError(PermissionError): a class made at run time that derives
		// from both; the wrapped type names the cause (ray/exceptions.py
		// as_instanceof_cause).
		end := bytes.IndexByte(text[i:], ')')
		if end < 0 {
			return nil
		}
		inner := excTypeName(text[i+1:i+end], strict)
		if inner == nil || len(inner) != end-1 || (i+end+1 < len(text) && text[i+end+1] != ':') {
			return nil
		}
		return inner
	}
	if i < len(text) && text[i] != ':' {
		return nil
	}
	last := name[bytes.LastIndexByte(name, '.')+1:]
	if len(last) == 0 || !(last[0] >= 'A' && last[0] <= 'Z' || last[0] == '_') {
		return nil
	}
	if strict && !(bytes.HasSuffix(last, []byte("Error")) || bytes.HasSuffix(last, []byte("Exception")) || bytes.HasSuffix(last, []byte("Interrupt")) || bytes.HasSuffix(last, []byte("Exit"))) {
		return nil
	}
	return name
}

// tracebackHeader is the line CPython prints before a traceback's frames.
var tracebackHeader = []byte("Traceback (most recent call last)")

// headerExcType returns the exception type IPython prints before "Traceback (most
// recent call last)" (ultratb's VerboseTB header: the type, padded to the terminal's
// width, or glued on when the name is long: "NanLossDuringTrainingErrorTraceback"), or
// nil for a plain header.
func headerExcType(text []byte) []byte {
	i := bytes.Index(text, tracebackHeader)
	if i <= 0 {
		return nil
	}
	return excTypeName(bytes.TrimRight(text[:i], " "), true)
}

// elasticMessage returns the exception line inside torchelastic's error file as it
// logs it ("message": "RendezvousTimeoutError: ..."; elastic/multiprocessing/errors/
// error_handler.py writes f"{type(e).__name__}: {e}"), else text.
func elasticMessage(text []byte) []byte {
	if rest, ok := bytes.CutPrefix(text, []byte(`"message": "`)); ok {
		return rest
	}
	return text
}

// nanWord reports a message that names NaN or Inf as a value: "Network outputs is
// NAN!", "loss is inf".
func nanWord(msg []byte) bool {
	for _, w := range [][]byte{[]byte("nan"), []byte("NaN"), []byte("NAN"), []byte("non-finite"), []byte("not finite")} {
		for off := 0; off < len(msg); {
			i := bytes.Index(msg[off:], w)
			if i < 0 {
				break
			}
			i += off
			j := i + len(w)
			if (i == 0 || !wordByte(msg[i-1])) && (j == len(msg) || !wordByte(msg[j])) {
				return true
			}
			off = j
		}
	}
	return false
}

// leadingTime parses a date-time at the start of a line, after quoting and rank
// prefixes ("2026-11-28 23:57:10,123 ...", "[2026-11-28T23:57:10Z] ..."), or after
// SLURM's "CANCELLED AT ".
func leadingTime(line []byte) (time.Time, bool) {
	if i := bytes.Index(line, []byte("CANCELLED AT ")); i >= 0 {
		return parseTime(line[i+len("CANCELLED AT "):])
	}
	for {
		before := len(line)
		line = bytes.TrimLeft(line, " \t>")
		if _, rest, ok := stripRank(line); ok {
			line = rest
		}
		if len(line) == before {
			break
		}
	}
	line = bytes.TrimPrefix(line, []byte("["))
	return parseTime(line)
}

func parseTime(s []byte) (time.Time, bool) {
	if len(s) < 19 || !digits(s[0:4]) || s[4] != '-' || !digits(s[5:7]) || s[7] != '-' || !digits(s[8:10]) ||
		(s[10] != 'T' && s[10] != ' ') || !digits(s[11:13]) || s[13] != ':' || !digits(s[14:16]) || s[16] != ':' || !digits(s[17:19]) {
		return time.Time{}, false
	}
	b := []byte(string(s[:19]))
	b[10] = 'T'
	t, err := time.Parse("2006-01-02T15:04:05", string(b))
	return t, err == nil
}
