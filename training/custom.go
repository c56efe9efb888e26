package training

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// ParseCustom parses one --metric NAME=REGEX. NAME must be a Prometheus metric-name
// suffix ([a-zA-Z_][a-zA-Z0-9_]*), since it is exported as one; the regexp's first
// group, or its whole match when it has none, is the value and must be able to hold a
// digit. A NAME of a standard metric (loss, learning_rate, ...) feeds that metric's
// anomaly checks, for a loop whose lines no built-in reads. Each error is one line
// naming the flag and what to do.
func ParseCustom(spec string) (Custom, error) {
	name, expr, ok := strings.Cut(spec, "=")
	if !ok {
		return Custom{}, fmt.Errorf("--metric %q: want NAME=REGEX, as in --metric 'val_acc=acc: ([0-9.]+)'", spec)
	}
	if !validName(name) {
		return Custom{}, fmt.Errorf("--metric %q: name %q must be letters, digits and _, not starting with a digit", spec, name)
	}
	if expr == "" {
		return Custom{}, fmt.Errorf("--metric %q: the regexp is empty; give one whose first group is the number", spec)
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		msg := err.Error()
		if se, ok := err.(*syntax.Error); ok {
			msg = fmt.Sprintf("%s in %q", se.Code, se.Expr)
		}
		return Custom{}, fmt.Errorf("--metric %q: the regexp does not compile: %s", spec, msg)
	}
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return Custom{}, fmt.Errorf("--metric %q: the regexp does not compile: %v", spec, err)
	}
	value := tree
	if re.NumSubexp() > 0 {
		value = findCapture(tree, 1)
	}
	if value == nil || !canMatchDigit(value) {
		what := "the regexp"
		if re.NumSubexp() > 0 {
			what = "its first group"
		}
		return Custom{}, fmt.Errorf("--metric %q: %s can never match a digit, so it yields no number; capture the number, as in 'loss: ([0-9.eE+-]+)'", spec, what)
	}
	return Custom{Name: name, Re: re}, nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func findCapture(re *syntax.Regexp, n int) *syntax.Regexp {
	if re.Op == syntax.OpCapture && re.Cap == n {
		return re
	}
	for _, s := range re.Sub {
		if c := findCapture(s, n); c != nil {
			return c
		}
	}
	return nil
}

// canMatchDigit reports whether re can match a string holding a decimal digit.
func canMatchDigit(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return true
	case syntax.OpLiteral:
		for _, r := range re.Rune {
			if r >= '0' && r <= '9' {
				return true
			}
		}
		return false
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			if re.Rune[i] <= '9' && re.Rune[i+1] >= '0' {
				return true
			}
		}
		return false
	}
	for _, s := range re.Sub {
		if canMatchDigit(s) {
			return true
		}
	}
	return false
}
